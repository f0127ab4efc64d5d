(* negative/WrongOverflowBound.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the multiplication lemma of BitExact64.v (IEEE binary64 steps
   of the rescaled exponential-LR runs of Li & Arora, ICLR 2020) with a
   no-overflow bound of 2^2048 instead of binary64's 2^1024: a product that
   rounds to a value between the two overflows to infinity, so the IEEE
   result is not the rounded real one.  The proof script is the one that
   succeeds for 2^1024; proofs/coq_check.py checks that coqc rejects this
   file inside [wrong_mult64] and that the marked line, once fixed, compiles.
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra ZArith.
From Flocq Require Import Core IEEE754.BinarySingleNaN IEEE754.Binary IEEE754.Bits.
From ExpLR Require Import BitExact BitExact64.
Open Scope R_scope.

Definition emax_bound : Z := 2048. (* FIX: 1024. *)

Theorem wrong_mult64 (x y : binary64) :
  fin x = true -> fin y = true -> Rabs (rnd64 (val x * val y)) < bpow radix2 emax_bound ->
  val (b64_mult mode_NE x y) = rnd64 (val x * val y) /\ fin (b64_mult mode_NE x y) = true.
Proof.
  intros Hx Hy Hb. unfold emax_bound in Hb.
  pose proof (Bmult_correct 53 1024 eq_refl eq_refl binop_nan_pl64 mode_NE x y) as H.
  rewrite Rlt_bool_true in H by exact Hb.
  destruct H as [H1 [H2 _]]. split.
  - exact H1.
  - change (fin (Bmult 53 1024 eq_refl eq_refl binop_nan_pl64 mode_NE x y) = true).
    rewrite H2, Hx, Hy. reflexivity.
Qed.
