(* GeneralSchedule.v -- the general theorem (Li & Arora, ICLR 2020, main
   theorem with momentum, any learning-rate and weight-decay schedule, zero
   momentum buffers), in PyTorch's SGD convention.

   Weight-decay run:   v_{t+1} = gamma v_t + G_t(theta_t) + lambda_t theta_t,
                       theta_{t+1} = theta_t - eta_t v_{t+1},   v_0 = 0.
   Exponential run:    the same with lambda = 0 and LR
                       eta~_t = eta_t / (c_t c_{t+1}),          v~_0 = 0,
   where  c_0 = 1,  c_1 = 1 - eta_0 lambda_0,
          c_{t+1} = (1 + gamma r_t - eta_t lambda_t) c_t - gamma r_t c_{t-1},
          r_t = eta_t / eta_{t-1}.
   Claim: theta~_t = theta_t / c_t for every t such that c_0, ..., c_t > 0.
   Buffer invariant (t >= 1): v~_t = c_t v_t + ((c_t - c_{t-1}) / eta_{t-1}) theta_t,
   and v~_0 = v_0 = 0.

   Main theorem: [general_schedule_equivalence].
   Corresponding SymPy module: proofs/general_schedule.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
Open Scope R_scope.

Section GeneralSchedule.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : R.                          (* momentum *)
Variable theta0 : vec I.                     (* common initial point *)

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

(* The scale sequence c_t, in the paper's form. *)
Fixpoint c (t : nat) : R :=
  match t with
  | O => 1
  | S t' =>
      match t' with
      | O => 1 - eta 0 * lam 0
      | S t'' =>
          let r := eta t' / eta t'' in
          (1 + gamma * r - eta t' * lam t') * c t' - gamma * r * c t''
      end
  end.

(* Coefficient of theta_t in the buffer invariant; k_0 = 0 because both
   buffers start at zero. *)
Definition k (t : nat) : R :=
  match t with
  | O => 0
  | S t' => (c t - c t') / eta t'
  end.

(* The two runs. *)
Definition wd_run (t : nat) : vec I * vec I :=
  run G eta lam gamma (theta0, vzero) t.

Definition exp_lr (t : nat) : R := eta t / (c t * c (S t)).

Definition exp_run (t : nat) : vec I * vec I :=
  run G exp_lr (fun _ => 0) gamma (theta0, vzero) t.

(* The paper's three-term recurrence, rewritten as the one-step relation
   c_{t+1} = c_t (1 - eta_t lambda_t) + gamma eta_t k_t  used by
   [step_invariant]. *)
Lemma c_recurrence (t : nat) :
  c (S t) = c t * (1 - eta t * lam t) + gamma * eta t * k t.
Proof.
  destruct t as [| t'].
  - simpl. ring.
  - change (c (S (S t'))) with
      ((1 + gamma * (eta (S t') / eta t') - eta (S t') * lam (S t')) * c (S t')
       - gamma * (eta (S t') / eta t') * c t').
    unfold k.
    assert (Heta : eta t' <> 0) by (pose proof (eta_pos t'); lra).
    field. exact Heta.
Qed.

(* The invariant: both the parameters and the buffers are related. *)
Lemma general_schedule_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (exp_run t) = vadd (vscale (c t) (snd (wd_run t))) (vscale (k t) (fst (wd_run t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - (* t = 0: same start, c_0 = 1, k_0 = 0 *)
    unfold exp_run, wd_run; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    pose proof (step_invariant G t (c t) (c (S t)) (k t) (eta t) (lam t) gamma
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (exp_run t)) (snd (exp_run t))
                  G_homogeneous Hct ltac:(lra) Heta (c_recurrence t)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_run, wd_run in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem (momentum case, any schedule, zero buffers). *)
Theorem general_schedule_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)).
Proof.
  intro Hpos. exact (proj1 (general_schedule_invariant t Hpos)).
Qed.

End GeneralSchedule.

Arguments wd_run {I} G eta lam gamma theta0 t.
Arguments exp_run {I} G eta lam gamma theta0 t.
