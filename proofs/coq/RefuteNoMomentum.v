(* RefuteNoMomentum.v -- the main theorem without momentum (NoMomentum.v;
   Li & Arora, ICLR 2020, momentum-free case) fails when the exponential
   growth factor (1 - eta lambda)^(-1) is replaced by its first-order
   approximation 1 + eta lambda, i.e. with
       eta~_t = eta (1 + eta lambda)^(2t+1)   and   theta~_t = (1 + eta lambda)^t theta_t;
   the wrong claim is refuted on a concrete member of the theorem's
   hypothesis class, and the right statement holds on the same instance.

   Instance: Witness.v's gradient [wG] of the scale-invariant loss
   x1^2 / (x1^2 + x2^2), theta_0 = (1, 1), eta = lambda = 1/2 (so
   eta lambda = 1/4 < 1).  At t = 1 the first coordinate of the no-WD run is
   11/16, while (1 + eta lambda) theta_1 has first coordinate 5/8.

   Main theorem: [growth_one_plus_refuted]; the right statement on the same
   instance: [right_growth_instance].
   Corresponding SymPy module: proofs/no_momentum.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import Vec Witness NoMomentum.
Open Scope R_scope.

Definition nm_eta : R := / 2.
Definition nm_lam : R := / 2.

(* The wrong LR: growth factor 1 + eta lambda instead of (1 - eta lambda)^(-1). *)
Definition wrong_lr (t : nat) : R := nm_eta * (1 + nm_eta * nm_lam) ^ (2 * t + 1).

(* Main theorem: the wrong claim fails already at t = 1. *)
Theorem growth_one_plus_refuted :
  ~ (forall t : nat,
       gd wG wone wrong_lr (fun _ => 0) t
       = vscale ((1 + nm_eta * nm_lam) ^ t) (wd_run wG nm_eta nm_lam wone t)).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun x => x true) (Hclaim 1%nat)) as H1.
  unfold wd_run in H1; cbn [gd] in H1. unfold wG in H1. rewrite wgrad_one in H1.
  unfold vscale, wone, wrong_lr, nm_eta, nm_lam in H1. simpl in H1.
  lra.
Qed.

(* The same instance satisfies the theorem with the right growth factor. *)
Lemma right_growth_instance (t : nat) :
  exp_run wG nm_eta nm_lam wone t
  = vscale (/ a nm_eta nm_lam ^ t) (wd_run wG nm_eta nm_lam wone t).
Proof.
  apply no_momentum_equivalence.
  - exact witness_homogeneous.
  - unfold nm_eta, nm_lam. lra.
Qed.
