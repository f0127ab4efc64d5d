(* MidRun.v -- the general theorem started in the middle of a run
   (Li & Arora, ICLR 2020, main theorem with momentum, any schedule), from ANY
   initial momentum buffer, in PyTorch's SGD convention, with a momentum
   schedule gamma_t.

   Both runs start from the same state (theta_0, v_0) with v_0 arbitrary
   (the exponential run's buffer is the weight-decay run's, copied as is).
   Weight-decay run:  v_{t+1} = gamma_t v_t + G_t(theta_t) + lambda_t theta_t,
                      theta_{t+1} = theta_t - eta_t v_{t+1}.
   Exponential run:   lambda = 0, the same gamma_t, LR eta~_t = eta_t / (c_t c_{t+1}),
                      with the scale sequence of GeneralSchedule.v:
                      c_0 = 1, c_1 = 1 - eta_0 lambda_0,
                      c_{t+1} = (1 + gamma_t r_t - eta_t lambda_t) c_t - gamma_t r_t c_{t-1},
                      r_t = eta_t / eta_{t-1}.
   Claim:             theta~_t = theta_t / c_t whenever c_0, ..., c_t > 0;
   buffer invariant:  v~_t = c_t v_t + ((c_t - c_{t-1}) / eta_{t-1}) theta_t  (t >= 1),
                      v~_0 = v_0.

   Main theorem: [mid_run_equivalence] (momentum schedule);
   [mid_run_equivalence_const]: its constant-momentum form (Momentum.v's [run]).
   Negative control: RefuteMidRun.v's [wrong_mid_run_buffer_refuted] proves
   the mid-run theorem with the exponential run's buffer reset to zero
   (instead of copied from the weight-decay run) false on Witness.v's loss.
   Corresponding SymPy module: proofs/mid_run.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule.
Open Scope R_scope.

Section MidRun.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : nat -> R.                   (* momentum schedule gamma_t *)
Variables theta0 v0 : vec I.                 (* common initial state, any buffer *)

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

Let c := cs eta lam gamma.
Let k := ks eta lam gamma.

Definition wd_srun_from (t : nat) : vec I * vec I := srun G eta lam gamma (theta0, v0) t.

Definition exp_srun_from (t : nat) : vec I * vec I :=
  srun G (exp_slr eta lam gamma) (fun _ => 0) gamma (theta0, v0) t.

Lemma mid_run_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_srun_from t) = vscale (/ c t) (fst (wd_srun_from t)) /\
  snd (exp_srun_from t) = vadd (vscale (c t) (snd (wd_srun_from t))) (vscale (k t) (fst (wd_srun_from t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - (* t = 0: c_0 = 1, k_0 = 0, the buffer is copied *)
    unfold exp_srun_from, wd_srun_from; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd; simpl.
    + unfold c; simpl. rewrite Rinv_1. ring.
    + unfold c, k; simpl. ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    pose proof (step_invariant G t (c t) (c (S t)) (k t) (eta t) (lam t) (gamma t)
                  (fst (wd_srun_from t)) (snd (wd_srun_from t))
                  (fst (exp_srun_from t)) (snd (exp_srun_from t))
                  G_homogeneous Hct ltac:(lra) Heta (cs_recurrence eta lam gamma eta_pos t)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_srun_from, wd_srun_from in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_slr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem: from any buffer, theta~_t = theta_t / c_t, and the buffer
   invariant, for every t with c_0, ..., c_t > 0. *)
Theorem mid_run_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_srun_from t) = vscale (/ c t) (fst (wd_srun_from t)) /\
  (t <> O ->
   snd (exp_srun_from t)
   = vadd (vscale (c t) (snd (wd_srun_from t)))
          (vscale ((c t - c (pred t)) / eta (pred t)) (fst (wd_srun_from t)))) /\
  (t = O -> snd (exp_srun_from t) = v0).
Proof.
  intro Hpos. destruct (mid_run_invariant t Hpos) as [Ht Hv].
  split; [exact Ht | split].
  - intro Hne. destruct t as [| t']; [contradiction |]. exact Hv.
  - intros ->. reflexivity.
Qed.

End MidRun.

(* ---- Constant momentum gamma_t = gamma: Momentum.v's [run]. ---- *)

Section MidRunConstant.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam : nat -> R.
Variable gamma : R.                          (* constant momentum *)
Variables theta0 v0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

Let c := GeneralSchedule.c eta lam gamma.

Definition wd_run_from (t : nat) : vec I * vec I := run G eta lam gamma (theta0, v0) t.

Definition exp_run_from (t : nat) : vec I * vec I :=
  run G (exp_lr eta lam gamma) (fun _ => 0) gamma (theta0, v0) t.

(* Main theorem, constant momentum. *)
Theorem mid_run_equivalence_const (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run_from t) = vscale (/ c t) (fst (wd_run_from t)) /\
  (t <> O ->
   snd (exp_run_from t)
   = vadd (vscale (c t) (snd (wd_run_from t)))
          (vscale ((c t - c (pred t)) / eta (pred t)) (fst (wd_run_from t)))) /\
  (t = O -> snd (exp_run_from t) = v0).
Proof.
  intro Hpos. unfold exp_run_from, wd_run_from. rewrite <- !srun_constant.
  exact (mid_run_equivalence I G eta lam (fun _ => gamma) theta0 v0
           G_homogeneous eta_pos t Hpos).
Qed.

End MidRunConstant.

Arguments wd_srun_from {I} G eta lam gamma theta0 v0 t.
Arguments exp_srun_from {I} G eta lam gamma theta0 v0 t.
