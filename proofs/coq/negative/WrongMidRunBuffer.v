(* negative/WrongMidRunBuffer.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the mid-run theorem of MidRun.v (the general theorem of
   Li & Arora, ICLR 2020, started from any momentum buffer) with the exponential
   run's buffer reset to zero instead of copied from the weight-decay run.
   The proof script is the one that succeeds for the copied buffer;
   proofs/coq_check.py checks that coqc rejects this file inside
   [wrong_mid_run_invariant] and that the marked line, once fixed, compiles.
   Corresponding SymPy module: proofs/mid_run.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule MidRun.
Open Scope R_scope.

Section WrongMidRun.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam : nat -> R.
Variable gamma : R.
Variables theta0 v0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

Let c := GeneralSchedule.c eta lam gamma.
Let k := GeneralSchedule.k eta lam gamma.
Let wd_run_from := wd_run_from I G eta lam gamma theta0 v0.

Definition exp_v0 : vec I := vzero. (* FIX: v0. *)

Definition wrong_exp_run (t : nat) : vec I * vec I :=
  run G (exp_lr eta lam gamma) (fun _ => 0) gamma (theta0, exp_v0) t.

Theorem wrong_mid_run_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (wrong_exp_run t) = vscale (/ c t) (fst (wd_run_from t)) /\
  snd (wrong_exp_run t) = vadd (vscale (c t) (snd (wd_run_from t))) (vscale (k t) (fst (wd_run_from t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - unfold wrong_exp_run, wd_run_from, MidRun.wd_run_from, exp_v0; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + unfold c; simpl. rewrite Rinv_1. ring.
    + unfold c, k; simpl. ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    pose proof (step_invariant G t (c t) (c (S t)) (k t) (eta t) (lam t) gamma
                  (fst (wd_run_from t)) (snd (wd_run_from t))
                  (fst (wrong_exp_run t)) (snd (wrong_exp_run t))
                  G_homogeneous Hct ltac:(lra) Heta (c_recurrence eta lam gamma eta_pos t)
                  IHtheta IHv) as [Htheta Hv].
    unfold wrong_exp_run, wd_run_from, MidRun.wd_run_from in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

End WrongMidRun.
