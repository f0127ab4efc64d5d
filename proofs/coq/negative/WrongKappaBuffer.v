(* negative/WrongKappaBuffer.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the invariant of KappaForm.v (the general theorem of
   Li & Arora, ICLR 2020, with the scale recurrence written without 1/eta,
   learning rates 0 allowed, momentum schedule gamma_t, any initial buffer)
   with the buffer only rescaled, v~_t = c_t v_t, the term kappa_t theta_t
   dropped.  The proof script is the one that succeeds for the right buffer
   relation; proofs/coq_check.py checks that coqc rejects this file inside
   [wrong_kappa_invariant] and that the marked line, once fixed, compiles.
   KappaForm.v proves the wrong relation false on a concrete instance with
   eta_0 = 0 ([buffer_without_kappa_refuted]).
   Corresponding SymPy module: proofs/kappa_form.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum KappaForm.
Open Scope R_scope.

Section WrongKappaBuffer.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam gamma : nat -> R.
Variables theta0 v0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.

Definition buf_coef (t : nat) : R := 0. (* FIX: kappa eta lam gamma t. *)

Theorem wrong_kappa_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc eta lam gamma s) ->
  fst (kexp_run G eta lam gamma theta0 v0 t)
  = vscale (/ kc eta lam gamma t) (fst (kwd_run G eta lam gamma theta0 v0 t)) /\
  snd (kexp_run G eta lam gamma theta0 v0 t)
  = vadd (vscale (kc eta lam gamma t) (snd (kwd_run G eta lam gamma theta0 v0 t)))
         (vscale (buf_coef t) (fst (kwd_run G eta lam gamma theta0 v0 t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - unfold kexp_run, kwd_run, buf_coef; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd; simpl.
    + unfold kc; simpl. rewrite Rinv_1. ring.
    + unfold kc, kappa; simpl. ring.
  - assert (Hct : 0 < kc eta lam gamma t) by (apply Hpos; lia).
    assert (Hct1 : 0 < kc eta lam gamma (S t)) by (apply Hpos; lia).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    unfold buf_coef in *.
    assert (Hc1 : kc eta lam gamma t
                  + eta t * (gamma t * kappa eta lam gamma t - lam t * kc eta lam gamma t) <> 0).
    { rewrite <- kappa_S, <- kc_S. lra. }
    pose proof (kappa_step_invariant (G t) (kc eta lam gamma t) (kappa eta lam gamma t)
                  (eta t) (lam t) (gamma t)
                  (fst (kwd_run G eta lam gamma theta0 v0 t))
                  (snd (kwd_run G eta lam gamma theta0 v0 t))
                  (fst (kexp_run G eta lam gamma theta0 v0 t))
                  (snd (kexp_run G eta lam gamma theta0 v0 t))
                  (homogeneous_at_inv G t _ _ G_homogeneous Hct) Hct Hc1
                  IHtheta IHv) as [Htheta Hv].
    rewrite <- kappa_S, <- kc_S in Htheta, Hv.
    unfold kexp_run, kwd_run in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold kexp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

End WrongKappaBuffer.
