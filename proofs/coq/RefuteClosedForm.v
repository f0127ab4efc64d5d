(* RefuteClosedForm.v -- the closed form for constant hyper-parameters
   (ClosedForm.v; Li & Arora, ICLR 2020, main theorem, momentum case) fails
   with the exponent of the LR off by one: eta~_t = eta alpha^(-2t) instead
   of eta alpha^(-2t-1) (same initial buffer, same claim
   theta~_t = alpha^(-t) theta_t).  The wrong claim is refuted on a concrete
   member of the theorem's hypothesis class, and the right statement holds
   on the same instance.

   Instance: Witness.v's gradient [wG] of the scale-invariant loss
   x1^2 / (x1^2 + x2^2), theta_0 = (1, 1), eta = lambda = 1/2,
   gamma = 1/4, alpha = 1/2 (the double root of
   x^2 - (1 + gamma - eta lambda) x + gamma = x^2 - x + 1/4).  Then
   v~_0 = -2 theta_0, and at t = 1 the second coordinate of the run with the
   wrong LR is 3/2, while theta_1 / alpha has second coordinate 2.

   Main theorem: [exponent_off_by_one_refuted]; the right statement on the
   same instance: [right_exponent_instance].
   Corresponding SymPy module: proofs/closed_form.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import Vec Witness Momentum ClosedForm.
Open Scope R_scope.

Definition cf_eta : R := / 2.
Definition cf_lam : R := / 2.
Definition cf_gamma : R := / 4.
Definition cf_alpha : R := / 2.

Lemma cf_alpha_root :
  cf_alpha ^ 2 - (1 + cf_gamma - cf_eta * cf_lam) * cf_alpha + cf_gamma = 0.
Proof. unfold cf_alpha, cf_gamma, cf_eta, cf_lam. field. Qed.

(* The wrong LR: eta alpha^(-2t) (exponent missing the -1). *)
Definition wrong_lr (t : nat) : R := cf_eta / cf_alpha ^ (2 * t).

(* Main theorem: the wrong claim fails already at t = 1. *)
Theorem exponent_off_by_one_refuted :
  ~ (forall t : nat,
       fst (run wG wrong_lr (fun _ => 0) cf_gamma (wone, exp_v0 cf_eta cf_alpha wone) t)
       = vscale (/ cf_alpha ^ t) (fst (wd_run wG cf_eta cf_lam cf_gamma wone t))).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun x => x false) (Hclaim 1%nat)) as H1.
  unfold wd_run in H1; cbn [run sgd_step fst snd] in H1.
  unfold wG in H1. rewrite wgrad_one in H1.
  unfold exp_v0, vscale, vzero, wone, wrong_lr, cf_eta, cf_lam, cf_gamma, cf_alpha in H1.
  simpl in H1.
  lra.
Qed.

(* The same instance satisfies the closed form with the right exponent. *)
Lemma right_exponent_instance (t : nat) :
  fst (exp_run wG cf_eta cf_gamma cf_alpha wone t)
  = vscale (/ cf_alpha ^ t) (fst (wd_run wG cf_eta cf_lam cf_gamma wone t)).
Proof.
  apply closed_form_equivalence.
  - exact witness_homogeneous.
  - unfold cf_eta. lra.
  - unfold cf_alpha. lra.
  - exact cf_alpha_root.
Qed.
