(* GeneralSchedule.v -- the general theorem (Li & Arora, ICLR 2020, main
   theorem with momentum, any learning-rate and weight-decay schedule, zero
   momentum buffers), in PyTorch's SGD convention, with a momentum schedule
   gamma_t (e.g. the momentum a one-cycle policy cycles).

   Weight-decay run:   v_{t+1} = gamma_t v_t + G_t(theta_t) + lambda_t theta_t,
                       theta_{t+1} = theta_t - eta_t v_{t+1},   v_0 = 0.
   Exponential run:    the same with lambda = 0, the same gamma_t, and LR
                       eta~_t = eta_t / (c_t c_{t+1}),          v~_0 = 0,
   where  c_0 = 1,  c_1 = 1 - eta_0 lambda_0,
          c_{t+1} = (1 + gamma_t r_t - eta_t lambda_t) c_t - gamma_t r_t c_{t-1},
          r_t = eta_t / eta_{t-1},
   i.e. the one-step relation c_{t+1} = c_t (1 - eta_t lambda_t) + gamma_t eta_t k_t
   with k_t = (c_t - c_{t-1}) / eta_{t-1} ([cs_recurrence]).
   Claim: theta~_t = theta_t / c_t for every t such that c_0, ..., c_t > 0.
   Buffer invariant (t >= 1): v~_t = c_t v_t + ((c_t - c_{t-1}) / eta_{t-1}) theta_t,
   and v~_0 = v_0 = 0.

   Definitions: [cs], [ks], [wd_srun], [exp_slr], [exp_srun] for a momentum
   schedule; [c], [k], [wd_run], [exp_lr], [exp_run] for a constant momentum
   gamma (Momentum.v's [run]), the same scales with gamma_t = gamma.

   Main theorem: [general_schedule_equivalence] (momentum schedule);
   [general_schedule_equivalence_const]: its constant-momentum form.
   Corresponding SymPy module: proofs/general_schedule.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
Open Scope R_scope.

Section GeneralSchedule.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : nat -> R.                   (* momentum schedule gamma_t *)
Variable theta0 : vec I.                     (* common initial point *)

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

(* The scale sequence c_t, in the paper's form. *)
Fixpoint cs (t : nat) : R :=
  match t with
  | O => 1
  | S t' =>
      match t' with
      | O => 1 - eta 0 * lam 0
      | S t'' =>
          let r := eta t' / eta t'' in
          (1 + gamma t' * r - eta t' * lam t') * cs t' - gamma t' * r * cs t''
      end
  end.

(* Coefficient of theta_t in the buffer invariant; k_0 = 0 because both
   buffers start at zero. *)
Definition ks (t : nat) : R :=
  match t with
  | O => 0
  | S t' => (cs t - cs t') / eta t'
  end.

(* The two runs. *)
Definition wd_srun (t : nat) : vec I * vec I :=
  srun G eta lam gamma (theta0, vzero) t.

Definition exp_slr (t : nat) : R := eta t / (cs t * cs (S t)).

Definition exp_srun (t : nat) : vec I * vec I :=
  srun G exp_slr (fun _ => 0) gamma (theta0, vzero) t.

(* The paper's three-term recurrence, rewritten as the one-step relation
   c_{t+1} = c_t (1 - eta_t lambda_t) + gamma_t eta_t k_t  used by
   [step_invariant]. *)
Lemma cs_recurrence (t : nat) :
  cs (S t) = cs t * (1 - eta t * lam t) + gamma t * eta t * ks t.
Proof.
  destruct t as [| t'].
  - simpl. ring.
  - change (cs (S (S t'))) with
      ((1 + gamma (S t') * (eta (S t') / eta t') - eta (S t') * lam (S t')) * cs (S t')
       - gamma (S t') * (eta (S t') / eta t') * cs t').
    unfold ks.
    assert (Heta : eta t' <> 0) by (pose proof (eta_pos t'); lra).
    field. exact Heta.
Qed.

(* The invariant: both the parameters and the buffers are related. *)
Lemma general_schedule_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < cs s) ->
  fst (exp_srun t) = vscale (/ cs t) (fst (wd_srun t)) /\
  snd (exp_srun t) = vadd (vscale (cs t) (snd (wd_srun t))) (vscale (ks t) (fst (wd_srun t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - (* t = 0: same start, c_0 = 1, k_0 = 0 *)
    unfold exp_srun, wd_srun; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - assert (Hct : 0 < cs t) by (apply Hpos; lia).
    assert (Hct1 : 0 < cs (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    pose proof (step_invariant G t (cs t) (cs (S t)) (ks t) (eta t) (lam t) (gamma t)
                  (fst (wd_srun t)) (snd (wd_srun t))
                  (fst (exp_srun t)) (snd (exp_srun t))
                  G_homogeneous Hct ltac:(lra) Heta (cs_recurrence t)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_srun, wd_srun in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_slr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem (momentum schedule, any LR / WD schedule, zero buffers). *)
Theorem general_schedule_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < cs s) ->
  fst (exp_srun t) = vscale (/ cs t) (fst (wd_srun t)).
Proof.
  intro Hpos. exact (proj1 (general_schedule_invariant t Hpos)).
Qed.

End GeneralSchedule.

Arguments wd_srun {I} G eta lam gamma theta0 t.
Arguments exp_srun {I} G eta lam gamma theta0 t.

(* ---- Constant momentum gamma_t = gamma: Momentum.v's [run]. ---- *)

Section ConstantMomentum.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam : nat -> R.
Variable gamma : R.                          (* constant momentum *)
Variable theta0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

Definition c (t : nat) : R := cs eta lam (fun _ => gamma) t.

Definition k (t : nat) : R := ks eta lam (fun _ => gamma) t.

Definition wd_run (t : nat) : vec I * vec I :=
  run G eta lam gamma (theta0, vzero) t.

Definition exp_lr (t : nat) : R := eta t / (c t * c (S t)).

Definition exp_run (t : nat) : vec I * vec I :=
  run G exp_lr (fun _ => 0) gamma (theta0, vzero) t.

Lemma c_recurrence (t : nat) :
  c (S t) = c t * (1 - eta t * lam t) + gamma * eta t * k t.
Proof. exact (cs_recurrence eta lam (fun _ => gamma) eta_pos t). Qed.

Lemma wd_run_srun (t : nat) : wd_run t = wd_srun G eta lam (fun _ => gamma) theta0 t.
Proof. unfold wd_run, wd_srun. symmetry. apply srun_constant. Qed.

Lemma exp_run_srun (t : nat) : exp_run t = exp_srun G eta lam (fun _ => gamma) theta0 t.
Proof. unfold exp_run, exp_srun. symmetry. apply srun_constant. Qed.

(* Main theorem, constant momentum (the form with Momentum.v's [run]). *)
Theorem general_schedule_equivalence_const (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)).
Proof.
  intro Hpos. rewrite exp_run_srun, wd_run_srun.
  exact (general_schedule_equivalence I G eta lam (fun _ => gamma) theta0
           G_homogeneous eta_pos t Hpos).
Qed.

End ConstantMomentum.

Arguments wd_run {I} G eta lam gamma theta0 t.
Arguments exp_run {I} G eta lam gamma theta0 t.
