(* Refutation.v -- the negative control's wrong claim is false, not merely
   unproven ([wrong_lr_refuted]): with the exponential run's LR left at
   eta~_t = eta_t (not divided by c_t c_{t+1}), the equivalence of the general
   theorem (Li & Arora, ICLR 2020, main theorem with momentum) fails on a
   concrete instance inside the theorem's hypothesis class, while the right
   LR works on the same instance.

   Instance: Witness.v's scale-invariant loss L(x) = x1^2 / (x1^2 + x2^2) on
   two coordinates (gradient map wG, homogeneous of degree -1, g(1, 1) =
   (1/2, -1/2)), eta_t = 1/2, lambda_t = 1, gamma_t = 1/2, theta_0 = (1, 1),
   zero buffers.  Then c_1 = 1/2 > 0, the weight-decay run reaches
   theta_1 = (1/4, 3/4), so theta_1 / c_1 = (1/2, 3/2) (what the right LR
   eta~_0 = 1 gives), while the wrong-LR run reaches (3/4, 5/4).

   Main theorem: [wrong_lr_refuted]; [right_lr_instance]: the general theorem
   on the same instance.
   Corresponding SymPy module: proofs/general_schedule.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule Witness.
Open Scope R_scope.

Definition eta_ex (t : nat) : R := / 2.
Definition lam_ex (t : nat) : R := 1.
Definition gam_ex (t : nat) : R := / 2.

Lemma c_ex_1 : cs eta_ex lam_ex gam_ex 1 = / 2.
Proof. simpl. unfold eta_ex, lam_ex. field. Qed.

Lemma c_ex_pos (s : nat) : (s <= 1)%nat -> 0 < cs eta_ex lam_ex gam_ex s.
Proof.
  intro Hs. destruct s as [| [| s]].
  - simpl. lra.
  - rewrite c_ex_1. lra.
  - exfalso. lia.
Qed.

(* Main theorem: the wrong-LR claim fails already at t = 1. *)
Theorem wrong_lr_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < cs eta_ex lam_ex gam_ex s) ->
       fst (srun wG eta_ex (fun _ => 0) gam_ex (wone, vzero) t)
       = vscale (/ cs eta_ex lam_ex gam_ex t)
           (fst (wd_srun wG eta_ex lam_ex gam_ex wone t))).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun x => x true) (Hclaim 1%nat c_ex_pos)) as H1.
  rewrite c_ex_1 in H1.
  unfold wd_srun in H1. cbn [srun sgd_step fst snd] in H1.
  unfold wG in H1. rewrite wgrad_one in H1.
  unfold vscale, vzero, wone, eta_ex, lam_ex, gam_ex in H1.
  field_simplify in H1. lra.
Qed.

(* The same instance satisfies the general theorem with the right LR. *)
Lemma right_lr_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < cs eta_ex lam_ex gam_ex s) ->
  fst (exp_srun wG eta_ex lam_ex gam_ex wone t)
  = vscale (/ cs eta_ex lam_ex gam_ex t) (fst (wd_srun wG eta_ex lam_ex gam_ex wone t)).
Proof.
  apply general_schedule_equivalence.
  - exact witness_homogeneous.
  - intro u. unfold eta_ex. lra.
Qed.
