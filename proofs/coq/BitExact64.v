(* BitExact64.v -- the bit-exact rescaling of BitExact.v (the exponential-LR
   runs of Li & Arora, ICLR 2020, rescaled by powers of two) on IEEE-754
   binary64 values, with overflow modelled: Flocq's [binary64] type and its
   operations [b64_mult], [b64_plus], [b64_opp] (IEEE754.Bits), round to
   nearest even.

   [sgd64] is one coordinate of torch.optim.SGD's step as the IEEE operations
   of its single-tensor path (see BitExact.v):
       p1 = wd * theta,  d = g + p1,  p2 = mom * buf,  b = p2 + d,
       p3 = (-lr) * b,   theta' = theta + p3.
   Claims.
     [sgd64_value]: with finite inputs and every rounded result below 2^1024
       in magnitude (no overflow), the IEEE step returns finite values, equal
       to the correctly rounded real model [sgd_fp] of BitExact.v.
     [sgd64_bit_exact]: finite binary64 inputs whose values are
       (2^2k lr, 2^-2k wd, mom, 2^-k g, 2^k theta, 2^-k buf) give, when neither
       run overflows and no exact intermediate value of the unrescaled step
       or its rescaled twin is subnormal ([sgd_fp_ok]), finite results whose
       values are exactly 2^k theta' and 2^-k b of the unrescaled IEEE step:
       the same significands, exponents shifted by k.  (Values, so a zero
       result is not distinguished from a negative zero.)
   The same with each a + alpha*b fused into one IEEE FMA (b64_fma), or any
   other placement of the roundings: BitExactFma.v.  The no-overflow bound
   2^1024 cannot be raised: RefuteRescaling.v's [wrong_mult64_refuted]
   proves false, with x = y = 2^1000, the multiplication lemma with the bound
   2^2048 ("finite doubles x, y with |rnd(x y)| < 2^2048 give a finite IEEE
   product b64_mult x y equal to rnd(x y)").

   Main theorem: [sgd64_bit_exact].
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra ZArith.
From Flocq Require Import Core IEEE754.BinarySingleNaN IEEE754.Binary IEEE754.Bits.
From ExpLR Require Import BitExact.
Open Scope R_scope.

Notation val := (B2R 53 1024).
Notation fin := (is_finite 53 1024).

Definition fits (x : R) : Prop := Rabs x < bpow radix2 1024.

Lemma mult64 (x y : binary64) :
  fin x = true -> fin y = true -> fits (rnd64 (val x * val y)) ->
  val (b64_mult mode_NE x y) = rnd64 (val x * val y) /\ fin (b64_mult mode_NE x y) = true.
Proof.
  intros Hx Hy Hb.
  pose proof (Bmult_correct 53 1024 eq_refl eq_refl binop_nan_pl64 mode_NE x y) as H.
  rewrite Rlt_bool_true in H by exact Hb.
  destruct H as [H1 [H2 _]]. split.
  - exact H1.
  - change (fin (Bmult 53 1024 eq_refl eq_refl binop_nan_pl64 mode_NE x y) = true).
    rewrite H2, Hx, Hy. reflexivity.
Qed.

Lemma plus64 (x y : binary64) :
  fin x = true -> fin y = true -> fits (rnd64 (val x + val y)) ->
  val (b64_plus mode_NE x y) = rnd64 (val x + val y) /\ fin (b64_plus mode_NE x y) = true.
Proof.
  intros Hx Hy Hb.
  pose proof (Bplus_correct 53 1024 eq_refl eq_refl binop_nan_pl64 mode_NE x y Hx Hy) as H.
  rewrite Rlt_bool_true in H by exact Hb.
  destruct H as [H1 [H2 _]]. split; [exact H1 | exact H2].
Qed.

Lemma opp64 (x : binary64) : val (b64_opp x) = - val x /\ fin (b64_opp x) = fin x.
Proof. split; [apply B2R_Bopp | apply is_finite_Bopp]. Qed.

Definition sgd64 (lr wd mom g theta buf : binary64) : binary64 * binary64 :=
  let p1 := b64_mult mode_NE wd theta in
  let d := b64_plus mode_NE g p1 in
  let p2 := b64_mult mode_NE mom buf in
  let b := b64_plus mode_NE p2 d in
  let p3 := b64_mult mode_NE (b64_opp lr) b in
  (b64_plus mode_NE theta p3, b).

(* No overflow: every rounded result of the real model is below 2^1024. *)
Definition sgd_fp_fits (lr wd mom g theta buf : R) : Prop :=
  let p1 := rnd64 (wd * theta) in
  let d := rnd64 (g + p1) in
  let p2 := rnd64 (mom * buf) in
  let b := rnd64 (p2 + d) in
  let p3 := rnd64 ((- lr) * b) in
  fits p1 /\ fits d /\ fits p2 /\ fits b /\ fits p3 /\ fits (rnd64 (theta + p3)).

(* Main theorem: without overflow the IEEE step is the rounded real model. *)
Theorem sgd64_value (lr wd mom g theta buf : binary64) :
  fin lr = true -> fin wd = true -> fin mom = true -> fin g = true ->
  fin theta = true -> fin buf = true ->
  sgd_fp_fits (val lr) (val wd) (val mom) (val g) (val theta) (val buf) ->
  val (fst (sgd64 lr wd mom g theta buf))
  = fst (sgd_fp (val lr) (val wd) (val mom) (val g) (val theta) (val buf)) /\
  val (snd (sgd64 lr wd mom g theta buf))
  = snd (sgd_fp (val lr) (val wd) (val mom) (val g) (val theta) (val buf)) /\
  fin (fst (sgd64 lr wd mom g theta buf)) = true /\
  fin (snd (sgd64 lr wd mom g theta buf)) = true.
Proof.
  intros Hlr Hwd Hmom Hg Hth Hbuf [F1 [F2 [F3 [F4 [F5 F6]]]]].
  destruct (mult64 wd theta Hwd Hth F1) as [V1 I1].
  rewrite <- V1 in F2, F4, F5, F6.
  destruct (plus64 g _ Hg I1 F2) as [V2 I2].
  rewrite <- V2 in F4, F5, F6.
  destruct (mult64 mom buf Hmom Hbuf F3) as [V3 I3].
  rewrite <- V3 in F4, F5, F6.
  destruct (plus64 _ _ I3 I2 F4) as [V4 I4].
  rewrite <- V4 in F5, F6.
  destruct (opp64 lr) as [Vo Io].
  rewrite <- Vo in F5, F6. rewrite Hlr in Io.
  destruct (mult64 _ _ Io I4 F5) as [V5 I5].
  rewrite <- V5 in F6.
  destruct (plus64 _ _ Hth I5 F6) as [V6 I6].
  unfold sgd64, sgd_fp. cbv zeta. cbn [fst snd].
  rewrite V6, V5, Vo, V4, V3, V2, V1.
  repeat split; assumption.
Qed.

(* Main theorem: bit-exact power-of-two rescaling of one IEEE SGD step. *)
Theorem sgd64_bit_exact (k : Z) (lr wd mom g theta buf lr' wd' g' theta' buf' : binary64) :
  fin lr = true -> fin wd = true -> fin mom = true -> fin g = true ->
  fin theta = true -> fin buf = true ->
  fin lr' = true -> fin wd' = true -> fin g' = true -> fin theta' = true -> fin buf' = true ->
  val lr' = val lr * two (2 * k) -> val wd' = val wd * two (- 2 * k) ->
  val g' = val g * two (- k) -> val theta' = val theta * two k ->
  val buf' = val buf * two (- k) ->
  sgd_fp_ok k (val lr) (val wd) (val mom) (val g) (val theta) (val buf) ->
  sgd_fp_fits (val lr) (val wd) (val mom) (val g) (val theta) (val buf) ->
  sgd_fp_fits (val lr') (val wd') (val mom) (val g') (val theta') (val buf') ->
  val (fst (sgd64 lr' wd' mom g' theta' buf')) = val (fst (sgd64 lr wd mom g theta buf)) * two k /\
  val (snd (sgd64 lr' wd' mom g' theta' buf'))
  = val (snd (sgd64 lr wd mom g theta buf)) * two (- k) /\
  fin (fst (sgd64 lr' wd' mom g' theta' buf')) = true /\
  fin (snd (sgd64 lr' wd' mom g' theta' buf')) = true.
Proof.
  intros Hlr Hwd Hmom Hg Hth Hbuf Hlr' Hwd' Hg' Hth' Hbuf' Elr Ewd Eg Eth Ebuf Hok Hfit Hfit'.
  destruct (sgd64_value lr wd mom g theta buf Hlr Hwd Hmom Hg Hth Hbuf Hfit)
    as [V1 [V2 _]].
  destruct (sgd64_value lr' wd' mom g' theta' buf' Hlr' Hwd' Hmom Hg' Hth' Hbuf' Hfit')
    as [V1' [V2' [I1' I2']]].
  pose proof (sgd_step_bit_exact k _ _ _ _ _ _ Hok) as Hexact.
  rewrite <- Elr, <- Ewd, <- Eg, <- Eth, <- Ebuf in Hexact.
  rewrite V1', V2', V1, V2, Hexact. cbn [fst snd].
  repeat split; assumption.
Qed.
