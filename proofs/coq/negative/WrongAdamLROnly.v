(* negative/WrongAdamLROnly.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the first-moment half of the one-step invariant of AdamW.v
   (AdamW as stock Adam without weight decay, the project's extension of
   Li & Arora, ICLR 2020) for a map that schedules the LR alone: the Adam run
   keeps beta1 instead of beta1 nu_{k-1} / nu_k.  The proof script is the one
   that succeeds for the scheduled beta; proofs/coq_check.py checks that coqc
   rejects this file inside [wrong_first_moment] and that the marked line,
   once fixed, compiles.
   Corresponding SymPy module: proofs/adamw.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import AdamW.
Open Scope R_scope.

Definition beta1_map (b1 nu0 nu1 : R) : R := b1. (* FIX: b1 * nu0 / nu1. *)

Theorem wrong_first_moment (A0 nu0 nu1 b1 m g : R) :
  0 < A0 -> 0 < nu0 -> 0 < nu1 -> nu1 = b1 * nu0 + (1 - b1) / A0 ->
  mstep (beta1_map b1 nu0 nu1) (/ nu0 * m) (A0 * g) = / nu1 * mstep b1 m g.
Proof.
  intros HA Hnu0 Hnu1 Hnu. unfold mstep, beta1_map.
  assert (E1 : 1 - b1 * nu0 / nu1 = (nu1 - b1 * nu0) / nu1) by (field; lra).
  assert (E2 : nu1 - b1 * nu0 = (1 - b1) / A0) by (rewrite Hnu; ring).
  rewrite E1, E2. field. split; lra.
Qed.
