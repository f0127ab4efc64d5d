(* Refutation.v -- the statement of the negative control negative/WrongLR.v
   is false, not merely unproven: with the exponential run's LR left at
   eta~_t = eta_t (not divided by c_t c_{t+1}), the equivalence of the general
   theorem (Li & Arora, ICLR 2020, main theorem with momentum) fails on a
   concrete instance, while the right LR works on the same instance.

   Instance: one coordinate (index type unit), G_t(theta) = 1 / theta
   (homogeneous of degree -1), eta_t = 1/2, lambda_t = 1, gamma = 0,
   theta_0 = 1.  Then c_1 = 1/2, the weight-decay run reaches theta_1 = 0,
   and the wrong-LR run reaches 1/2 instead of theta_1 / c_1 = 0.

   Main theorem: [wrong_lr_refuted].
   Corresponding SymPy module: proofs/general_schedule.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule.
Open Scope R_scope.

Definition inv_grad (t : nat) (x : vec unit) : vec unit := fun i => / x i.

Lemma inv_grad_homogeneous : homogeneous_m1 inv_grad.
Proof.
  intros t c x Hc.
  apply functional_extensionality; intro i.
  unfold inv_grad, vscale.
  rewrite Rinv_mult. reflexivity.
Qed.

Definition eta_ex (t : nat) : R := / 2.
Definition lam_ex (t : nat) : R := 1.
Definition theta0_ex : vec unit := fun _ => 1.

Lemma c_ex_1 : c eta_ex lam_ex 0 1 = / 2.
Proof. simpl. unfold eta_ex, lam_ex. field. Qed.

(* Main theorem: the wrong-LR claim fails already at t = 1. *)
Theorem wrong_lr_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < c eta_ex lam_ex 0 s) ->
       fst (run inv_grad eta_ex (fun _ => 0) 0 (theta0_ex, vzero) t)
       = vscale (/ c eta_ex lam_ex 0 t) (fst (wd_run inv_grad eta_ex lam_ex 0 theta0_ex t))).
Proof.
  intro Hclaim.
  assert (Hpos : forall s, (s <= 1)%nat -> 0 < c eta_ex lam_ex 0 s).
  { intros s Hs. destruct s as [| [| s]].
    - simpl. lra.
    - rewrite c_ex_1. lra.
    - exfalso. lia. }
  pose proof (f_equal (fun x => x tt) (Hclaim 1%nat Hpos)) as H1.
  rewrite c_ex_1 in H1.
  unfold wd_run in H1; simpl in H1.
  unfold inv_grad, vscale, vzero, theta0_ex, eta_ex, lam_ex in H1.
  rewrite Rinv_1 in H1.
  lra.
Qed.

(* The same instance satisfies the general theorem with the right LR. *)
Lemma right_lr_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c eta_ex lam_ex 0 s) ->
  fst (exp_run inv_grad eta_ex lam_ex 0 theta0_ex t)
  = vscale (/ c eta_ex lam_ex 0 t) (fst (wd_run inv_grad eta_ex lam_ex 0 theta0_ex t)).
Proof.
  apply general_schedule_equivalence.
  - exact inv_grad_homogeneous.
  - intro u. unfold eta_ex. lra.
Qed.
