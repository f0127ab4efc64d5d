(* negative/WrongLR.v -- NEGATIVE CONTROL: this file must be REJECTED by coqc.

   It states the general theorem of GeneralSchedule.v (Li & Arora, ICLR 2020,
   main theorem with momentum, any schedule) with a wrong learning rate for
   the exponential run: eta~_t = eta_t instead of eta_t / (c_t c_{t+1}).
   The proof script is the one that succeeds for the right learning rate;
   proofs/coq_check.py checks that coqc rejects this file inside the proof
   of [wrong_lr_equivalence], and that replacing the single marked line by
   the text after "FIX:" makes the same file compile.  Refutation.v proves
   the wrong statement false on a concrete instance.
   Corresponding SymPy module: proofs/general_schedule.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum GeneralSchedule.
Open Scope R_scope.

Section WrongLR.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam : nat -> R.
Variable gamma : R.
Variable theta0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.

Let c := c eta lam gamma.
Let k := k eta lam gamma.
Let wd_run := wd_run G eta lam gamma theta0.

Definition wrong_lr (t : nat) : R := eta t. (* FIX: eta t / (c t * c (S t)). *)

Definition wrong_exp_run (t : nat) : vec I * vec I :=
  run G wrong_lr (fun _ => 0) gamma (theta0, vzero) t.

Theorem wrong_lr_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (wrong_exp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (wrong_exp_run t) = vadd (vscale (c t) (snd (wd_run t))) (vscale (k t) (fst (wd_run t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - unfold wrong_exp_run, wd_run, GeneralSchedule.wd_run; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    unfold wrong_exp_run, wd_run, GeneralSchedule.wd_run in *.
    cbn [run]. unfold sgd_step. cbn [fst snd].
    rewrite IHtheta, IHv.
    rewrite (homogeneous_at_inv G t (c t) _ G_homogeneous Hct).
    (* k_{t+1} = (c_{t+1} - c_t) / eta_t, then the one-step relation for c *)
    change (k (S t)) with ((c (S t) - c t) / eta t).
    pose proof (c_recurrence eta lam gamma eta_pos t) as Hrec. fold c k in Hrec.
    unfold wrong_lr.
    split; apply functional_extensionality; intro i; unfold vscale, vadd.
    + rewrite Hrec. field. repeat split; try rewrite <- Hrec; lra.
    + rewrite Hrec. field. repeat split; try rewrite <- Hrec; lra.
Qed.

End WrongLR.
