(* negative/RescaleByThree.v -- NEGATIVE CONTROL: this file must be REJECTED
   by coqc.

   It states the scaling lemma of BitExact.v (bit-exact rescaling of the
   exponential-LR runs of Li & Arora, ICLR 2020) with the factor 3 instead
   of a power of two: round(3 x) = 3 round(x) in binary64's precision.  That
   is false (x = 1 + 2^-52 is a double, 3 x is not), and the proof script
   that succeeds for 2^e fails.  proofs/coq_check.py checks that coqc rejects
   this file inside the proof of [wrong_factor_commutes], and that replacing
   the single marked line by the text after "FIX:" makes it compile.
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra Lia ZArith.
From Flocq Require Import Core.
From ExpLR Require Import BitExact.
Open Scope R_scope.

Definition factor (e : Z) : R := 3. (* FIX: bpow radix2 e. *)

Theorem wrong_factor_commutes (rnd : R -> Z) {Hr : Valid_rnd rnd} (x : R) (e : Z) :
  round radix2 (FLX_exp prec64) rnd (x * factor e)
  = round radix2 (FLX_exp prec64) rnd x * factor e.
Proof.
  unfold factor.
  destruct (Req_dec x 0) as [-> | Hx].
  - rewrite Rmult_0_l, round_0, Rmult_0_l; [reflexivity | exact Hr].
  - unfold round, scaled_mantissa, cexp, F2R; simpl.
    rewrite (mag_mult_bpow radix2 x e Hx). unfold FLX_exp.
    set (a := (mag radix2 x - prec64)%Z).
    replace (mag radix2 x + e - prec64)%Z with (a + e)%Z by (unfold a; ring).
    replace (x * bpow radix2 e * bpow radix2 (- (a + e))) with (x * bpow radix2 (- a)).
    + rewrite bpow_plus. ring.
    + replace (- (a + e))%Z with (- a + - e)%Z by ring.
      rewrite (bpow_plus radix2 (- a) (- e)), (bpow_opp radix2 e).
      field. apply Rgt_not_eq, bpow_gt_0.
Qed.
