(* ClosedForm.v -- the paper's closed form for constant hyper-parameters
   (Li & Arora, ICLR 2020, main theorem, momentum case, constant eta,
   lambda, gamma).

   alpha > 0 is a root of  x^2 - (1 + gamma - eta lambda) x + gamma = 0.
   Weight-decay run:  PyTorch momentum SGD with eta, lambda, gamma, v_0 = 0.
   Exponential run:   no weight decay, LR eta~_t = eta alpha^(-2t-1), and the
                      initial buffer v~_0 = -(1 - alpha) theta_0 / (alpha eta).
   Claim:             theta~_t = alpha^(-t) theta_t for every t.
   Buffer invariant:  v~_t = alpha^t v_t - alpha^t (1 - alpha) / (alpha eta) theta_t.
   Either root works (the hypothesis is only alpha > 0 and the quadratic).

   Main theorem: [closed_form_equivalence].
   Corresponding SymPy module: proofs/closed_form.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
Open Scope R_scope.

Section ClosedForm.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam gamma : R.                 (* constant LR, WD, momentum *)
Variable alpha : R.
Variable theta0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : 0 < eta.
Hypothesis alpha_pos : 0 < alpha.
Hypothesis alpha_root : alpha ^ 2 - (1 + gamma - eta * lam) * alpha + gamma = 0.

Definition wd_run (t : nat) : vec I * vec I :=
  run G (fun _ => eta) (fun _ => lam) gamma (theta0, vzero) t.

Definition exp_lr (t : nat) : R := eta / alpha ^ (2 * t + 1).

Definition exp_v0 : vec I := vscale (- (1 - alpha) / (alpha * eta)) theta0.

Definition exp_run (t : nat) : vec I * vec I :=
  run G exp_lr (fun _ => 0) gamma (theta0, exp_v0) t.

(* Coefficient of theta_t in the buffer invariant. *)
Definition k (t : nat) : R := - alpha ^ t * (1 - alpha) / (alpha * eta).

Lemma pow_2t1 (x : R) (t : nat) : x ^ (2 * t + 1) = x ^ t * x ^ (S t).
Proof.
  rewrite pow_add, pow_1.
  replace (2 * t)%nat with (t + t)%nat by lia.
  rewrite pow_add, <- tech_pow_Rmult. ring.
Qed.

(* With c_t = alpha^t the one-step relation of [step_invariant] is the
   quadratic for alpha. *)
Lemma alpha_recurrence (t : nat) :
  alpha ^ S t = alpha ^ t * (1 - eta * lam) + gamma * eta * k t.
Proof.
  assert (Hp : 0 < alpha ^ t) by (apply pow_lt; exact alpha_pos).
  unfold k. rewrite <- tech_pow_Rmult.
  assert (E : alpha * alpha ^ t
              - (alpha ^ t * (1 - eta * lam)
                 + gamma * eta * (- alpha ^ t * (1 - alpha) / (alpha * eta)))
              = alpha ^ t / alpha
                * (alpha ^ 2 - (1 + gamma - eta * lam) * alpha + gamma))
    by (field; split; lra).
  rewrite alpha_root, Rmult_0_r in E.
  lra.
Qed.

Lemma closed_form_invariant (t : nat) :
  fst (exp_run t) = vscale (/ alpha ^ t) (fst (wd_run t)) /\
  snd (exp_run t) = vadd (vscale (alpha ^ t) (snd (wd_run t))) (vscale (k t) (fst (wd_run t))).
Proof.
  induction t as [| t [IHtheta IHv]].
  - unfold exp_run, wd_run, exp_v0, k; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + field. split; lra.
  - assert (Hp : 0 < alpha ^ t) by (apply pow_lt; exact alpha_pos).
    assert (Hp1 : 0 < alpha ^ S t) by (apply pow_lt; exact alpha_pos).
    pose proof (step_invariant G t (alpha ^ t) (alpha ^ S t) (k t) eta lam gamma
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (exp_run t)) (snd (exp_run t))
                  G_homogeneous Hp ltac:(lra) ltac:(lra) (alpha_recurrence t)
                  IHtheta IHv) as [Htheta Hv].
    rewrite <- surjective_pairing in Htheta, Hv.
    replace (eta / (alpha ^ t * alpha ^ S t)) with (exp_lr t) in Htheta, Hv
      by (unfold exp_lr; rewrite pow_2t1; reflexivity).
    replace ((alpha ^ S t - alpha ^ t) / eta) with (k (S t)) in Hv
      by (unfold k; rewrite <- tech_pow_Rmult; field; split; lra).
    unfold exp_run, wd_run; simpl.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem (closed form, constant hyper-parameters). *)
Theorem closed_form_equivalence (t : nat) :
  fst (exp_run t) = vscale (/ alpha ^ t) (fst (wd_run t)).
Proof.
  exact (proj1 (closed_form_invariant t)).
Qed.

End ClosedForm.

Arguments wd_run {I} G eta lam gamma theta0 t.
Arguments exp_run {I} G eta gamma alpha theta0 t.
Arguments exp_v0 {I} eta alpha theta0.
