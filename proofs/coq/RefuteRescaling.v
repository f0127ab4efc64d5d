(* RefuteRescaling.v -- the two negative controls of the bit-exact
   rescaling of the exponential-LR runs of Li & Arora, ICLR 2020, in binary64
   (rescaling by the factor 3 instead of a power of two; the no-overflow
   bound 2^2048 instead of 2^1024) are false, not merely unproven: each is
   refuted on a concrete double.

   Claims.
     [wrong_factor_commutes_refuted]: the negation of the wrong claim that
       rounding commutes with the factor 3, "for every valid rounding rnd,
       every x and e, round(x * factor e) = round(x) * factor e in precision
       53 (FLX) with factor e = 3".  Witness: nearest-even rounding, x = 1 + 2^-52
       (a double); 3 x = 3 + 3 2^-52 is halfway between two doubles
       ([rescale_by_three_not_exact] of BitExact.v, carried from binary64's
       FLT format to FLX, where both values are normal).
     [wrong_mult64_refuted]: the negation of the wrong claim that
       BitExact64.v's mult64 holds with the bound 2^2048, "for finite
       doubles x, y with |rnd(x y)| < 2^2048, the IEEE product b64_mult x y
       is finite and equals rnd(x y)".  Witness: x = y = 2^1000; rnd(x y) = 2^2000 is
       below 2^2048, but the IEEE product overflows to +infinity (computed
       by vm_compute on Flocq's binary64), so it is not finite.
     [mult64_bound_sharp]: on the same witness the hypothesis of the right
       lemma (mult64 of BitExact64.v: |rnd(x y)| < 2^1024) fails, as it must.

   Main theorems: [wrong_factor_commutes_refuted], [wrong_mult64_refuted].
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra Lia ZArith.
From Flocq Require Import Core IEEE754.BinarySingleNaN IEEE754.Binary IEEE754.Bits.
From ExpLR Require Import BitExact BitExact64.
Open Scope R_scope.

(* The wrong rescaling factor: 3 instead of 2^e. *)
Definition factor3 (e : Z) : R := 3.

(* Main theorem: rounding does not commute with the factor 3. *)
Theorem wrong_factor_commutes_refuted :
  ~ (forall (rnd : R -> Z) (Hr : Valid_rnd rnd) (x : R) (e : Z),
       round radix2 (FLX_exp prec64) rnd (x * factor3 e)
       = round radix2 (FLX_exp prec64) rnd x * factor3 e).
Proof.
  intro H.
  destruct rescale_by_three_not_exact as [[Hx0 | Hx] [[Hx30 | Hx3] Hne]].
  - unfold x_three in Hx0. pose proof (bpow_gt_0 radix2 (-52)). lra.
  - unfold x_three in Hx0. pose proof (bpow_gt_0 radix2 (-52)). lra.
  - unfold x_three in Hx30. pose proof (bpow_gt_0 radix2 (-52)). lra.
  - apply Hne. unfold rnd64, fmt64, two in *.
    rewrite (round_FLT_FLX radix2 emin64 prec64 _ _ Hx3).
    rewrite (round_FLT_FLX radix2 emin64 prec64 _ _ Hx).
    exact (H ZnearestE (valid_rnd_N _) x_three 0%Z).
Qed.

(* 2^1000 as a binary64: significand 2^52, exponent 948. *)
Definition x1000 : binary64 := B754_finite 53 1024 false 4503599627370496 948 eq_refl.

Lemma val_x1000 : val x1000 = bpow radix2 1000.
Proof.
  unfold B2R, x1000, F2R. cbn [Fnum Fexp cond_Zopp].
  change (IZR (Zpos 4503599627370496)) with (bpow radix2 52).
  rewrite <- bpow_plus. reflexivity.
Qed.

Lemma rnd_x1000_sq : rnd64 (val x1000 * val x1000) = bpow radix2 2000.
Proof.
  rewrite val_x1000, <- bpow_plus. unfold rnd64.
  apply round_generic; [apply valid_rnd_N |].
  apply generic_format_bpow. unfold fmt64, FLT_exp, emin64, prec64. lia.
Qed.

(* Main theorem: the no-overflow bound 2^2048 is wrong. *)
Theorem wrong_mult64_refuted :
  ~ (forall x y : binary64,
       fin x = true -> fin y = true ->
       Rabs (rnd64 (val x * val y)) < bpow radix2 2048 ->
       val (b64_mult mode_NE x y) = rnd64 (val x * val y) /\
       fin (b64_mult mode_NE x y) = true).
Proof.
  intro H.
  assert (Hb : Rabs (rnd64 (val x1000 * val x1000)) < bpow radix2 2048).
  { rewrite rnd_x1000_sq, Rabs_pos_eq by (apply bpow_ge_0).
    apply bpow_lt. lia. }
  destruct (H x1000 x1000 eq_refl eq_refl Hb) as [_ Hfin].
  vm_compute in Hfin. discriminate Hfin.
Qed.

(* The right bound 2^1024 excludes this witness. *)
Lemma mult64_bound_sharp : ~ fits (rnd64 (val x1000 * val x1000)).
Proof.
  unfold fits. rewrite rnd_x1000_sq, Rabs_pos_eq by (apply bpow_ge_0).
  apply Rle_not_lt, bpow_le. lia.
Qed.
