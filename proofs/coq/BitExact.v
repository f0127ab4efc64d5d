(* BitExact.v -- bit-exact power-of-two rescaling of a floating-point SGD
   step: the exact rescaling of Rescaling.v (the project's "never
   overflowing" device for the exponential-LR runs of Li & Arora, ICLR 2020)
   survives IEEE-754 rounding when the factor is 2^k.

   Arithmetic model (Flocq).  binary64: radix 2, precision 53, FLT format
   with emin = -1074 (subnormals included), rounding to nearest, ties to
   even ([ZnearestE]); [rnd64 x] is the correctly rounded value of the exact
   real x.  Flocq's FLT format has no largest exponent, so overflow is not
   modelled here: the theorems are about the values IEEE-754 arithmetic
   returns when no operation overflows (|result| < 2^1024), where each IEEE
   operation returns exactly [rnd64] of its exact result; BitExact64.v
   states the step on Flocq's IEEE binary64 type, with overflow modelled.

   One step of torch.optim.SGD (momentum gamma, dampening 0, nesterov off,
   weight decay lambda, LR eta), per coordinate, as the sequence of
   correctly rounded elementary operations of its reference (single-tensor,
   non-fused, non-foreach) path:
       p1 = rnd(lambda * theta)        d_p = grad.add(param, alpha=lambda)
       d  = rnd(g + p1)
       p2 = rnd(gamma * buf)           buf.mul_(gamma).add_(d_p)
       b  = rnd(p2 + d)
       p3 = rnd((-eta) * b)            param.add_(buf, alpha=-eta)
       theta' = rnd(theta + p3)
   (each "a + alpha*b" is two roundings here, as in PyTorch's CPU kernels
   built without FMA, ATEN_CPU_CAPABILITY=default; the foreach path is the
   same sequence per coordinate.  Kernels that fuse a + alpha*b into one
   FMA, rnd(a + alpha*b), as the AVX2/AVX512 CPU kernels do, and every other
   placement of the roundings are covered by BitExactFma.v).

   Claims.
     [rnd64_mult_bpow]: rnd(2^k x) = 2^k rnd(x) when neither x nor 2^k x is
       subnormal (each is 0 or of magnitude >= 2^-1022).
     [sgd_step_bit_exact]: the step applied to
       (2^k theta, 2^-k buf, 2^(2k) eta, 2^-2k lambda, 2^-k g)
       returns exactly (2^k theta', 2^-k b), given that every exact
       intermediate value (lambda theta, g + p1, gamma buf, p2 + d, -eta b,
       theta + p3) and its rescaled twin is 0 or normal.  (lambda = 0 is the
       exponential-LR run; the gradient at 2^k theta being exactly 2^-k times
       the gradient at theta is a hypothesis about the gradient computation,
       not proven here.)
     [sgd_vec_bit_exact]: the same for whole parameter vectors.
   Negative control: [rescale_by_three_not_exact] (a double x, neither x nor
   3 x subnormal, with rnd(3 x) <> 3 rnd(x)); RefuteRescaling.v's
   [wrong_factor_commutes_refuted] proves false the claim that rounding
   commutes with the factor 3 instead of 2^k.

   Main theorems: [rnd64_mult_bpow], [sgd_step_bit_exact], [sgd_vec_bit_exact],
   [rescale_by_three_not_exact].
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra Lia ZArith FunctionalExtensionality.
From Flocq Require Import Core.
Open Scope R_scope.

Definition prec64 : Z := 53.
Definition emin64 : Z := -1074.

Global Instance prec64_gt_0 : Prec_gt_0 prec64.
Proof. unfold Prec_gt_0, prec64. lia. Qed.

Definition fmt64 : Z -> Z := FLT_exp emin64 prec64.

(* Correct rounding to binary64, nearest-even. *)
Definition rnd64 (x : R) : R := round radix2 fmt64 ZnearestE x.

Definition two (e : Z) : R := bpow radix2 e.

(* 0 or normal: |x| >= 2^(emin + prec - 1) = 2^-1022. *)
Definition no_subnormal (x : R) : Prop := x = 0 \/ two (emin64 + prec64 - 1) <= Rabs x.

(* In the unbounded-precision-53 format (FLX), scaling by 2^e commutes with
   any rounding. *)
Lemma round_FLX_mult_bpow (rnd : R -> Z) {Hr : Valid_rnd rnd} (x : R) (e : Z) :
  round radix2 (FLX_exp prec64) rnd (x * bpow radix2 e)
  = round radix2 (FLX_exp prec64) rnd x * bpow radix2 e.
Proof.
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

Lemma rnd64_0 : rnd64 0 = 0.
Proof. unfold rnd64. apply round_0. apply valid_rnd_N. Qed.

(* Main theorem: rounding to binary64 commutes with 2^e away from subnormals. *)
Theorem rnd64_mult_bpow (x : R) (e : Z) :
  no_subnormal x -> no_subnormal (x * two e) -> rnd64 (x * two e) = rnd64 x * two e.
Proof.
  intros [-> | Hx] Hxe.
  - rewrite Rmult_0_l, rnd64_0, Rmult_0_l. reflexivity.
  - destruct Hxe as [Hz | Hxe].
    + (* x * 2^e = 0 forces x = 0 *)
      apply Rmult_integral in Hz. destruct Hz as [Hz | Hz].
      * rewrite Hz, Rmult_0_l, rnd64_0, Rmult_0_l. reflexivity.
      * exfalso. pose proof (bpow_gt_0 radix2 e). unfold two in Hz. lra.
    + unfold rnd64, fmt64, two in *.
      rewrite (round_FLT_FLX radix2 emin64 prec64 _ _ Hx).
      rewrite (round_FLT_FLX radix2 emin64 prec64 _ _ Hxe).
      apply round_FLX_mult_bpow. apply valid_rnd_N.
Qed.

(* One coordinate of torch.optim.SGD's step, as correctly rounded operations. *)
Definition sgd_fp (lr wd mom g theta buf : R) : R * R :=
  let p1 := rnd64 (wd * theta) in
  let d := rnd64 (g + p1) in
  let p2 := rnd64 (mom * buf) in
  let b := rnd64 (p2 + d) in
  let p3 := rnd64 ((- lr) * b) in
  (rnd64 (theta + p3), b).

(* The exact (unrounded) operands of the six roundings of [sgd_fp]; the
   hypothesis of the main theorem is that each is 0 or normal before and
   after rescaling by its factor (2^k for the theta chain, 2^-k for the
   buffer chain). *)
Definition sgd_fp_ok (k : Z) (lr wd mom g theta buf : R) : Prop :=
  let p1 := rnd64 (wd * theta) in
  let d := rnd64 (g + p1) in
  let p2 := rnd64 (mom * buf) in
  let b := rnd64 (p2 + d) in
  let p3 := rnd64 ((- lr) * b) in
  let ok (x : R) (e : Z) := no_subnormal x /\ no_subnormal (x * two e) in
  ok (wd * theta) (- k)%Z /\ ok (g + p1) (- k)%Z /\ ok (mom * buf) (- k)%Z /\
  ok (p2 + d) (- k)%Z /\ ok ((- lr) * b) k /\ ok (theta + p3) k.

Lemma two_inv (k : Z) : two k * two (- k) = 1.
Proof.
  unfold two. rewrite <- bpow_plus. replace (k + - k)%Z with 0%Z by ring. reflexivity.
Qed.

Lemma two_double (k : Z) : two (2 * k) = two k * two k.
Proof. unfold two. rewrite <- bpow_plus. f_equal. ring. Qed.

(* Main theorem: one SGD step on the rescaled state is the rescaled step,
   bit for bit. *)
Theorem sgd_step_bit_exact (k : Z) (lr wd mom g theta buf : R) :
  sgd_fp_ok k lr wd mom g theta buf ->
  sgd_fp (lr * two (2 * k)) (wd * two (- 2 * k)) mom (g * two (- k))
         (theta * two k) (buf * two (- k))
  = (fst (sgd_fp lr wd mom g theta buf) * two k,
     snd (sgd_fp lr wd mom g theta buf) * two (- k)).
Proof.
  intros [H1 [H2 [H3 [H4 [H5 H6]]]]].
  pose proof (two_inv k) as Hinv.
  assert (Hm2 : two (- 2 * k) = two (- k) * two (- k)).
  { replace (- 2 * k)%Z with (2 * - k)%Z by ring. apply two_double. }
  unfold sgd_fp. cbn [fst snd].
  (* p1 *)
  replace (wd * two (- 2 * k) * (theta * two k)) with (wd * theta * two (- k))
    by (rewrite Hm2; transitivity (wd * theta * two (- k) * (two k * two (- k)));
        [rewrite Hinv; ring | ring]).
  rewrite (rnd64_mult_bpow _ _ (proj1 H1) (proj2 H1)).
  (* d *)
  replace (g * two (- k) + rnd64 (wd * theta) * two (- k))
    with ((g + rnd64 (wd * theta)) * two (- k)) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H2) (proj2 H2)).
  (* p2 *)
  replace (mom * (buf * two (- k))) with (mom * buf * two (- k)) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H3) (proj2 H3)).
  (* b *)
  set (d := rnd64 (g + rnd64 (wd * theta))) in *.
  replace (rnd64 (mom * buf) * two (- k) + d * two (- k))
    with ((rnd64 (mom * buf) + d) * two (- k)) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H4) (proj2 H4)).
  (* p3 *)
  set (b := rnd64 (rnd64 (mom * buf) + d)) in *.
  replace (- (lr * two (2 * k)) * (b * two (- k))) with (- lr * b * two k)
    by (rewrite two_double; transitivity (- lr * b * two k * (two k * two (- k)));
        [rewrite Hinv; ring | ring]).
  rewrite (rnd64_mult_bpow _ _ (proj1 H5) (proj2 H5)).
  (* theta' *)
  replace (theta * two k + rnd64 (- lr * b) * two k)
    with ((theta + rnd64 (- lr * b)) * two k) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H6) (proj2 H6)).
  reflexivity.
Qed.

(* The whole parameter tensor: every operation of the step is elementwise. *)
Section Vectors.

Variable I : Type.

Definition sgd_vec (lr wd mom : R) (g theta buf : I -> R) : (I -> R) * (I -> R) :=
  (fun i => fst (sgd_fp lr wd mom (g i) (theta i) (buf i)),
   fun i => snd (sgd_fp lr wd mom (g i) (theta i) (buf i))).

(* Main theorem: the step on whole tensors, under the coordinatewise
   hypothesis. *)
Theorem sgd_vec_bit_exact (k : Z) (lr wd mom : R) (g theta buf : I -> R) :
  (forall i, sgd_fp_ok k lr wd mom (g i) (theta i) (buf i)) ->
  sgd_vec (lr * two (2 * k)) (wd * two (- 2 * k)) mom
          (fun i => g i * two (- k)) (fun i => theta i * two k) (fun i => buf i * two (- k))
  = ((fun i => fst (sgd_vec lr wd mom g theta buf) i * two k),
     (fun i => snd (sgd_vec lr wd mom g theta buf) i * two (- k))).
Proof.
  intro Hok. unfold sgd_vec. cbn [fst snd].
  f_equal; apply functional_extensionality; intro i;
    rewrite (sgd_step_bit_exact k _ _ _ _ _ _ (Hok i)); reflexivity.
Qed.

End Vectors.

(* Why a power of two: the factor 3 breaks exactness on the first double
   above 1.  x = 1 + 2^-52 is a double, 3 x = 3 + 3 2^-52 lies halfway between
   two doubles, so rnd(3 x) <> 3 rnd(x) = 3 x, although neither value is
   subnormal (the proof above fails for 3). *)
Definition x_three : R := 1 + bpow radix2 (-52).

Theorem rescale_by_three_not_exact :
  no_subnormal x_three /\ no_subnormal (x_three * 3) /\
  rnd64 (x_three * 3) <> rnd64 x_three * 3.
Proof.
  set (u := bpow radix2 (-52)).
  assert (Hu : u * 4503599627370496 = 1).
  { unfold u. change 4503599627370496 with (bpow radix2 52).
    rewrite <- bpow_plus. reflexivity. }
  assert (Hu0 : 0 < u) by apply bpow_gt_0.
  assert (Hx : x_three = 1 + u) by reflexivity.
  assert (Hmin : two (emin64 + prec64 - 1) <= 1).
  { unfold two. change 1 with (bpow radix2 0). apply bpow_le. unfold emin64, prec64. lia. }
  split; [right; rewrite Rabs_right; lra |].
  split; [right; rewrite Rabs_right; lra |].
  (* x is a double *)
  assert (Hround : rnd64 x_three = x_three).
  { unfold rnd64. apply round_generic; [apply valid_rnd_N |].
    apply generic_format_FLT.
    apply (FLT_spec _ _ _ _ (Float radix2 4503599627370497 (-52))).
    - unfold F2R. cbn [Fnum Fexp]. fold u. rewrite Hx. lra.
    - cbn [Fnum]. unfold prec64. reflexivity.
    - cbn [Fexp]. unfold emin64. lia. }
  rewrite Hround. intro H.
  (* then 3 x would be a double *)
  assert (Hf : generic_format radix2 fmt64 (x_three * 3)).
  { rewrite <- H. apply generic_format_round; [apply FLT_exp_valid; exact prec64_gt_0 |
                                              apply valid_rnd_N]. }
  assert (Hmag : mag radix2 (x_three * 3) = 2%Z :> Z).
  { apply mag_unique. rewrite Rabs_right by lra.
    change (bpow radix2 (2 - 1)) with 2. change (bpow radix2 2) with 4.
    rewrite Hx. lra. }
  assert (Hcexp : cexp radix2 fmt64 (x_three * 3) = (-51)%Z).
  { unfold cexp. rewrite Hmag. reflexivity. }
  unfold generic_format, F2R in Hf. cbn [Fnum Fexp] in Hf.
  rewrite Hcexp in Hf.
  set (n := Ztrunc (scaled_mantissa radix2 fmt64 (x_three * 3))) in Hf.
  assert (H51 : bpow radix2 (-51) = 2 * u).
  { unfold u. replace (-51)%Z with (1 + -52)%Z by ring. rewrite bpow_plus. reflexivity. }
  rewrite H51 in Hf.
  assert (Hn : IZR n * 2 = 3 * 4503599627370496 + 3).
  { transitivity (IZR n * (2 * u) * 4503599627370496).
    - transitivity (IZR n * 2 * (u * 4503599627370496)); [rewrite Hu; ring | ring].
    - rewrite <- Hf, Hx.
      transitivity (3 * 4503599627370496 + 3 * (u * 4503599627370496)); [ring | rewrite Hu; ring]. }
  assert (Hz : (n * 2)%Z = 13510798882111491%Z).
  { apply eq_IZR. rewrite mult_IZR. rewrite Hn. lra. }
  lia.
Qed.
