(* BitExactFma.v -- the bit-exact power-of-two rescaling of BitExact.v and
   BitExact64.v (the exponential-LR runs of Li & Arora, ICLR 2020, rescaled
   by 2^k) for every placement of the roundings that PyTorch's SGD kernels
   use: each "a + alpha * b" either rounded twice, rnd(a + rnd(alpha * b)),
   or fused into one rounding, rnd(a + alpha * b) (a fused multiply-add).

   The step.  One coordinate of torch.optim.SGD (momentum gamma, dampening
   tau, nesterov off, maximize off, weight decay lambda, LR eta) with an
   existing momentum buffer, as written in torch/optim/sgd.py:
     _single_tensor_sgd:
       d_p = grad.add(param, alpha=lambda)            d  = g + lambda * theta
       buf.mul_(gamma).add_(d_p, alpha=1 - tau)       b  = gamma * buf + (1-tau) * d
       param.add_(buf, alpha=-eta)                    theta' = theta + (-eta) * b
     _multi_tensor_sgd (foreach): torch._foreach_add(grads, params,
       alpha=lambda), torch._foreach_mul_(bufs, gamma), torch._foreach_add_(bufs,
       grads, alpha=1-tau), torch._foreach_add_(params, bufs, alpha=-eta): the
       same operations coordinate by coordinate, so the same model (a list of
       tensors is one index type I, see [sgd_gen_vec_bit_exact]).
   [opt m x] is the product x of one of these operations either rounded
   ([Rounded]: a separate multiply) or left exact ([Exact]: fused into the
   rounding of the sum), independently for the four products lambda*theta,
   gamma*buf, (1-tau)*d, (-eta)*b:
       d  = rnd(g + opt m1 (lambda * theta))
       b  = rnd(opt m2 (gamma * buf) + opt m3 ((1-tau) * d))
       theta' = rnd(theta + opt m4 ((-eta) * b))
   All four [Rounded] with 1-tau = 1 is the model [sgd_fp] of BitExact.v
   ([sgd_gen_rounded], [sgd_fp_ok_gen]).  With tau = 0 a zero buffer also
   gives PyTorch's first step, where the buffer is a clone of d
   ([sgd_gen_first_step]).

   Which placement each PyTorch path uses (binary64 tensors).  Citations:
   [S] = the stored copy of pytorch/pytorch searched (one version per file,
   not necessarily current); [W] = the installed torch 2.13.0+cpu wheel,
   site-packages/torch/optim/sgd.py and site-packages/torch/include/...
     - The optimizer: [W] torch/optim/sgd.py, _single_tensor_sgd (line 322):
       grad.add(param, alpha=weight_decay) (353, 355),
       buf.mul_(momentum).add_(grad, alpha=1 - dampening) (364),
       param.add_(grad, alpha=-lr) (377, 379; a tensor lr with requires_grad
       uses param.addcmul_(grad, lr, value=-1), 374); _multi_tensor_sgd:
       torch._foreach_add(device_grads, device_params, alpha=weight_decay)
       (429-431), torch._foreach_mul_(bufs, momentum) and
       torch._foreach_add_(bufs, device_grads, alpha=1 - dampening) (445-446),
       torch._foreach_add_(device_params, device_grads, alpha=-lr) (472);
       under torch.compile with a tensor lr, _foreach_mul then _foreach_add_
       (468-470: the lr product rounded on its own in eager semantics).
     - CPU add(..., alpha=): add.out in native_functions.yaml has
       "ufunc_inner_loop: Generic: add"; [S] aten/src/ATen/native/ufunc/add.h
       (commit 66b5b0b5), at::native::ufunc::add: scalar loop
       "return self + alpha * other;" (line 14), vectorised loop
       "return vec::fmadd(other, alpha, self);" (line 21).
       vec::fmadd for double, [W] ATen/cpu/vec/: vec256/vec256_double.h
       481-488 (under CPU_CAPABILITY_AVX2: _mm256_fmadd_pd, one rounding);
       vec512/vec512_double.h 532-538 (_mm512_fmadd_pd, one rounding);
       vec128/vec128_double_neon.h 570-576 (aarch64: vfmaq_f64, one
       rounding); generic fallback vec_base.h 1246-1252, "a * b + c" on
       Vectorized<T> (two roundings unless the C++ compiler contracts it).
       The scalar loop, strided tensors and the remainder of a tensor are
       left to the C++ compiler's contraction rules (GCC's default
       -ffp-contract=fast may emit an FMA when the build targets one).
     - CPU foreach: [S] aten/src/ATen/native/ForeachOpsKernels.cpp (commit
       009ecb2b), FOREACH_BINARY_OP_LIST_ALPHA(add) defines
       foreach_tensor_add_list_kernel_slow(_), which calls
       tensors1[i].add_(tensors2[i], alpha), the kernel above, tensor by
       tensor; _foreach_mul_ by a scalar calls t.mul_(scalar).
     - CPU fused=True: [S] aten/src/ATen/native/cpu/FusedSGDKernel.cpp
       (commit 03bf11f2), sgd_math (float/double overload):
       grad_vec += param_vec * Vec(weight_decay); momentum_vec =
       loadu(buf) * Vec(momentum) + grad_vec * Vec(1 - dampening);
       param_vec += grad_vec * Vec(-lr): plain Vectorized operators, fused
       or not by the compiler alone.
     - CUDA add: the same ufunc::add "self + alpha * other", compiled by
       nvcc.  CUDA foreach: [W] ATen/native/cuda/ForeachFunctors.cuh,
       BinaryOpListAlphaFunctor (lines 331-380):
       op(r_args[0][ii], alpha * r_args[1][ii]) (360-361, 373-374), with
       op = std::plus by [S] aten/src/ATen/native/cuda/ForeachBinaryOpList.cu
       (commit 00a1abb4), FOREACH_BINARY_OP_LIST_ALPHA(..., add, std::plus).
       CUDA fused=True: [S] aten/src/ATen/native/cuda/FusedSgdKernel.cu
       (commit 064f50b9), sgd_math: g += weight_decay * p;
       momentum * buf + (1 - dampening) * g; p -= lr * g.
       nvcc's default --fmad=true allows contracting each a + alpha * b into
       an FMA; whether it does is decided in the compiled code (PTX/SASS),
       not in the source, and is NOT determined here (no GPU was available
       to test it).  In the fused CUDA kernel either product of the buffer
       update may be the contracted one: (m2, m3) = (Exact, Rounded) or
       (Rounded, Exact).
   Observed on this project's CPU (torch 2.13.0+cpu, x86-64, double tensors,
   weight decay, momentum and dampening all nonzero, 2000 coordinates each
   compared with exact rational arithmetic for all 16 mode choices): with
   ATEN_CPU_CAPABILITY=default every path (single-tensor, foreach, fused)
   is exactly (m1, m2, m3, m4) = (Rounded, Rounded, Rounded, Rounded); with
   avx2 or avx512 every path is exactly (Exact, Rounded, Exact, Exact).
   The theorems below hold for every choice, per coordinate.

   Claims.
     [opt_mult_bpow]: opt m (2^e x) = 2^e opt m x (x and 2^e x not subnormal
       when the product is rounded).
     [sgd_gen_bit_exact]: for any modes, the step applied to
       (2^2k eta, 2^-2k lambda, 1-tau, gamma, 2^-k g, 2^k theta, 2^-k buf)
       returns exactly (2^k theta', 2^-k b), given that every exact value
       that is rounded (each sum, and each product in [Rounded] mode) is 0 or
       normal before and after rescaling ([sgd_gen_ok]).
     [sgd_fma_bit_exact]: the instance (Exact, Rounded, Exact, Exact) of the
       AVX2/AVX512 CPU kernels.
     [sgd_gen_vec_bit_exact]: whole tensors (or a foreach list of tensors),
       with the modes chosen per coordinate.
     [sgd64_gen_value], [sgd64_gen_bit_exact]: the same step on Flocq's IEEE
       binary64 with overflow modelled (b64_mult, b64_plus, b64_fma, round
       to nearest even): finite inputs and no rounded result reaching 2^1024
       give finite values equal to the real model, exactly 2^k theta' and
       2^-k b of the unrescaled IEEE step.  One IEEE FMA fuses one product,
       so for the buffer the IEEE model takes [bmode]: both products rounded,
       (1-tau)*d fused, or gamma*buf fused.
   Not covered: the gradient (assumed to be exactly 2^-k times the
   unrescaled one), nesterov, maximize, the fused kernels' grad_scale
   division, a tensor-valued lr under torch.compile (Inductor generates its
   own kernels), the sign of a zero result, float32/bfloat16 storage.

   Main theorems: [opt_mult_bpow], [sgd_gen_bit_exact], [sgd_fma_bit_exact],
   [sgd_gen_vec_bit_exact], [sgd64_gen_value], [sgd64_gen_bit_exact].
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra Lia ZArith FunctionalExtensionality.
From Flocq Require Import Core IEEE754.BinarySingleNaN IEEE754.Binary IEEE754.Bits.
From ExpLR Require Import BitExact BitExact64.
Open Scope R_scope.

(* ------------------------------------------------------------------ *)
(* Real-valued model (Flocq FLT binary64 rounding, no overflow).       *)

(* How the product of one "a + alpha * b" is treated. *)
Inductive pmode : Set := Rounded | Exact.

Definition opt (m : pmode) (x : R) : R :=
  match m with Rounded => rnd64 x | Exact => x end.

(* x and its twin 2^e x are 0 or normal. *)
Definition nsub2 (x : R) (e : Z) : Prop := no_subnormal x /\ no_subnormal (x * two e).

Definition opt_ok (m : pmode) (x : R) (e : Z) : Prop :=
  match m with Rounded => nsub2 x e | Exact => True end.

(* Main theorem: a product, rounded or not, commutes with 2^e. *)
Theorem opt_mult_bpow (m : pmode) (x : R) (e : Z) :
  opt_ok m x e -> opt m (x * two e) = opt m x * two e.
Proof.
  destruct m; simpl.
  - intros [H1 H2]. apply rnd64_mult_bpow; assumption.
  - intros _. reflexivity.
Qed.

Definition sgd_gen (m1 m2 m3 m4 : pmode) (lr wd damp1 mom g theta buf : R) : R * R :=
  let d := rnd64 (g + opt m1 (wd * theta)) in
  let b := rnd64 (opt m2 (mom * buf) + opt m3 (damp1 * d)) in
  (rnd64 (theta + opt m4 ((- lr) * b)), b).

(* Every exact value that is rounded is 0 or normal, before and after
   rescaling by its factor (2^-k on the gradient/buffer chain, 2^k on the
   parameter chain). *)
Definition sgd_gen_ok (m1 m2 m3 m4 : pmode) (k : Z) (lr wd damp1 mom g theta buf : R)
  : Prop :=
  let d := rnd64 (g + opt m1 (wd * theta)) in
  let b := rnd64 (opt m2 (mom * buf) + opt m3 (damp1 * d)) in
  opt_ok m1 (wd * theta) (- k) /\ nsub2 (g + opt m1 (wd * theta)) (- k) /\
  opt_ok m2 (mom * buf) (- k) /\ opt_ok m3 (damp1 * d) (- k) /\
  nsub2 (opt m2 (mom * buf) + opt m3 (damp1 * d)) (- k) /\
  opt_ok m4 ((- lr) * b) k /\ nsub2 (theta + opt m4 ((- lr) * b)) k.

(* Main theorem: for every placement of the roundings, one SGD step on the
   rescaled state is the rescaled step, bit for bit. *)
Theorem sgd_gen_bit_exact (m1 m2 m3 m4 : pmode) (k : Z) (lr wd damp1 mom g theta buf : R) :
  sgd_gen_ok m1 m2 m3 m4 k lr wd damp1 mom g theta buf ->
  sgd_gen m1 m2 m3 m4 (lr * two (2 * k)) (wd * two (- 2 * k)) damp1 mom (g * two (- k))
          (theta * two k) (buf * two (- k))
  = (fst (sgd_gen m1 m2 m3 m4 lr wd damp1 mom g theta buf) * two k,
     snd (sgd_gen m1 m2 m3 m4 lr wd damp1 mom g theta buf) * two (- k)).
Proof.
  intros [H1 [H2 [H3 [H4 [H5 [H6 H7]]]]]].
  pose proof (two_inv k) as Hinv.
  assert (Hm2 : two (- 2 * k) = two (- k) * two (- k)).
  { replace (- 2 * k)%Z with (2 * - k)%Z by ring. apply two_double. }
  unfold sgd_gen. cbn [fst snd].
  (* d *)
  replace (wd * two (- 2 * k) * (theta * two k)) with (wd * theta * two (- k))
    by (rewrite Hm2; transitivity (wd * theta * two (- k) * (two k * two (- k)));
        [rewrite Hinv; ring | ring]).
  rewrite (opt_mult_bpow _ _ _ H1).
  replace (g * two (- k) + opt m1 (wd * theta) * two (- k))
    with ((g + opt m1 (wd * theta)) * two (- k)) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H2) (proj2 H2)).
  set (d := rnd64 (g + opt m1 (wd * theta))) in *.
  (* b *)
  replace (mom * (buf * two (- k))) with (mom * buf * two (- k)) by ring.
  rewrite (opt_mult_bpow _ _ _ H3).
  replace (damp1 * (d * two (- k))) with (damp1 * d * two (- k)) by ring.
  rewrite (opt_mult_bpow _ _ _ H4).
  replace (opt m2 (mom * buf) * two (- k) + opt m3 (damp1 * d) * two (- k))
    with ((opt m2 (mom * buf) + opt m3 (damp1 * d)) * two (- k)) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H5) (proj2 H5)).
  set (b := rnd64 (opt m2 (mom * buf) + opt m3 (damp1 * d))) in *.
  (* theta' *)
  replace (- (lr * two (2 * k)) * (b * two (- k))) with (- lr * b * two k)
    by (rewrite two_double; transitivity (- lr * b * two k * (two k * two (- k)));
        [rewrite Hinv; ring | ring]).
  rewrite (opt_mult_bpow _ _ _ H6).
  replace (theta * two k + opt m4 (- lr * b) * two k)
    with ((theta + opt m4 (- lr * b)) * two k) by ring.
  rewrite (rnd64_mult_bpow _ _ (proj1 H7) (proj2 H7)).
  reflexivity.
Qed.

(* The AVX2/AVX512 CPU kernels: every add(..., alpha=) one FMA, the momentum
   multiplication mul_ rounded on its own. *)
Definition sgd_fma := sgd_gen Exact Rounded Exact Exact.

(* Main theorem: bit-exact rescaling of the fused step. *)
Theorem sgd_fma_bit_exact (k : Z) (lr wd damp1 mom g theta buf : R) :
  let d := rnd64 (g + wd * theta) in
  let b := rnd64 (rnd64 (mom * buf) + damp1 * d) in
  nsub2 (g + wd * theta) (- k) -> nsub2 (mom * buf) (- k) ->
  nsub2 (rnd64 (mom * buf) + damp1 * d) (- k) -> nsub2 (theta + (- lr) * b) k ->
  sgd_fma (lr * two (2 * k)) (wd * two (- 2 * k)) damp1 mom (g * two (- k))
          (theta * two k) (buf * two (- k))
  = (fst (sgd_fma lr wd damp1 mom g theta buf) * two k,
     snd (sgd_fma lr wd damp1 mom g theta buf) * two (- k)).
Proof.
  intros d b H2 H3 H5 H7. subst d b.
  apply sgd_gen_bit_exact. unfold sgd_gen_ok. cbv zeta. cbn [opt opt_ok].
  exact (conj I (conj H2 (conj H3 (conj I (conj H5 (conj I H7)))))).
Qed.

(* The separately rounded model of BitExact.v is the instance with every
   product rounded and 1 - tau = 1. *)
Lemma rnd64_idem (x : R) : rnd64 (rnd64 x) = rnd64 x.
Proof.
  unfold rnd64. apply round_generic; [apply valid_rnd_N |].
  apply generic_format_round; [apply FLT_exp_valid; exact prec64_gt_0 | apply valid_rnd_N].
Qed.

Lemma sgd_gen_rounded (lr wd mom g theta buf : R) :
  sgd_gen Rounded Rounded Rounded Rounded lr wd 1 mom g theta buf
  = sgd_fp lr wd mom g theta buf.
Proof.
  unfold sgd_gen, sgd_fp. cbn [opt]. rewrite Rmult_1_l, rnd64_idem. reflexivity.
Qed.

(* The first step (no buffer yet): PyTorch sets buf = d (a clone); the
   model with 1 - tau = 1 and a zero buffer gives the same values. *)
Lemma sgd_gen_first_step (m1 m2 m3 m4 : pmode) (lr wd mom g theta : R) :
  let d := rnd64 (g + opt m1 (wd * theta)) in
  sgd_gen m1 m2 m3 m4 lr wd 1 mom g theta 0 = (rnd64 (theta + opt m4 ((- lr) * d)), d).
Proof.
  intro d. unfold sgd_gen. fold d.
  assert (Hd : rnd64 (opt m2 (mom * 0) + opt m3 (1 * d)) = d).
  { rewrite Rmult_0_r, Rmult_1_l.
    assert (H0 : opt m2 0 = 0) by (destruct m2; [apply rnd64_0 | reflexivity]).
    assert (H1 : opt m3 d = d) by (destruct m3; [apply rnd64_idem | reflexivity]).
    rewrite H0, H1, Rplus_0_l. apply rnd64_idem. }
  rewrite Hd. reflexivity.
Qed.

(* Rounding keeps a value 0 or normal (2^-1022 is a double). *)
Lemma rnd64_no_subnormal (x : R) : no_subnormal x -> no_subnormal (rnd64 x).
Proof.
  intros [-> | Hx]; [left; apply rnd64_0 |].
  right. unfold rnd64. apply abs_round_ge_generic; [| apply valid_rnd_N | | exact Hx].
  - apply FLT_exp_valid; exact prec64_gt_0.
  - unfold two. apply generic_format_bpow. unfold fmt64, FLT_exp, emin64, prec64. lia.
Qed.

Lemma sgd_fp_ok_gen (k : Z) (lr wd mom g theta buf : R) :
  sgd_fp_ok k lr wd mom g theta buf ->
  sgd_gen_ok Rounded Rounded Rounded Rounded k lr wd 1 mom g theta buf.
Proof.
  intros [H1 [H2 [H3 [H4 [H5 H6]]]]].
  unfold sgd_gen_ok. cbn [opt opt_ok]. rewrite Rmult_1_l, rnd64_idem.
  repeat split; try apply H1; try apply H2; try apply H3; try apply H4;
    try apply H5; try apply H6.
  - apply rnd64_no_subnormal, H2.
  - rewrite <- (rnd64_mult_bpow _ _ (proj1 H2) (proj2 H2)).
    apply rnd64_no_subnormal, H2.
Qed.

(* Whole tensors, or the list of tensors of one foreach call (index type I),
   with the placement of the roundings chosen per coordinate. *)
Section Vectors.

Variable I : Type.

Definition sgd_gen_vec (m1 m2 m3 m4 : I -> pmode) (lr wd damp1 mom : R)
  (g theta buf : I -> R) : (I -> R) * (I -> R) :=
  (fun i => fst (sgd_gen (m1 i) (m2 i) (m3 i) (m4 i) lr wd damp1 mom (g i) (theta i) (buf i)),
   fun i => snd (sgd_gen (m1 i) (m2 i) (m3 i) (m4 i) lr wd damp1 mom (g i) (theta i) (buf i))).

(* Main theorem: the step on whole tensors, any placement per coordinate. *)
Theorem sgd_gen_vec_bit_exact (m1 m2 m3 m4 : I -> pmode) (k : Z) (lr wd damp1 mom : R)
  (g theta buf : I -> R) :
  (forall i, sgd_gen_ok (m1 i) (m2 i) (m3 i) (m4 i) k lr wd damp1 mom (g i) (theta i) (buf i)) ->
  sgd_gen_vec m1 m2 m3 m4 (lr * two (2 * k)) (wd * two (- 2 * k)) damp1 mom
    (fun i => g i * two (- k)) (fun i => theta i * two k) (fun i => buf i * two (- k))
  = ((fun i => fst (sgd_gen_vec m1 m2 m3 m4 lr wd damp1 mom g theta buf) i * two k),
     (fun i => snd (sgd_gen_vec m1 m2 m3 m4 lr wd damp1 mom g theta buf) i * two (- k))).
Proof.
  intro Hok. unfold sgd_gen_vec. cbn [fst snd].
  f_equal; apply functional_extensionality; intro i;
    rewrite (sgd_gen_bit_exact _ _ _ _ k _ _ _ _ _ _ _ (Hok i)); reflexivity.
Qed.

End Vectors.

(* ------------------------------------------------------------------ *)
(* IEEE binary64 with overflow (Flocq's binary64, round to nearest even). *)

Lemma fma64 (x y z : binary64) :
  fin x = true -> fin y = true -> fin z = true ->
  fits (rnd64 (val x * val y + val z)) ->
  val (b64_fma mode_NE x y z) = rnd64 (val x * val y + val z) /\
  fin (b64_fma mode_NE x y z) = true.
Proof.
  intros Hx Hy Hz Hb.
  pose proof (Bfma_correct 53 1024 eq_refl eq_refl ternop_nan_pl64 mode_NE x y z Hx Hy Hz)
    as H.
  cbv zeta in H.
  rewrite Rlt_bool_true in H by exact Hb.
  destruct H as [H1 [H2 _]]. split; [exact H1 | exact H2].
Qed.

(* The placement of the roundings in the buffer update: one IEEE FMA fuses
   at most one of its two products. *)
Inductive bmode : Set := RoundBoth | FuseDamp | FuseMom.

Definition bm2 (bm : bmode) : pmode := match bm with FuseMom => Exact | _ => Rounded end.
Definition bm3 (bm : bmode) : pmode := match bm with FuseDamp => Exact | _ => Rounded end.

(* a + al * b: rounded product then sum, or one FMA. *)
Definition axpy64 (m : pmode) (a al b : binary64) : binary64 :=
  match m with
  | Rounded => b64_plus mode_NE a (b64_mult mode_NE al b)
  | Exact => b64_fma mode_NE al b a
  end.

(* x1 * y1 + x2 * y2 for the buffer update. *)
Definition lin64 (bm : bmode) (x1 y1 x2 y2 : binary64) : binary64 :=
  match bm with
  | RoundBoth => b64_plus mode_NE (b64_mult mode_NE x1 y1) (b64_mult mode_NE x2 y2)
  | FuseDamp => b64_fma mode_NE x2 y2 (b64_mult mode_NE x1 y1)
  | FuseMom => b64_fma mode_NE x1 y1 (b64_mult mode_NE x2 y2)
  end.

Definition sgd64_gen (m1 : pmode) (bm : bmode) (m4 : pmode)
  (lr wd damp1 mom g theta buf : binary64) : binary64 * binary64 :=
  let d := axpy64 m1 g wd theta in
  let b := lin64 bm mom buf damp1 d in
  (axpy64 m4 theta (b64_opp lr) b, b).

Definition opt_fits (m : pmode) (x : R) : Prop :=
  match m with Rounded => fits (rnd64 x) | Exact => True end.

(* No overflow: every rounded result of the real model is below 2^1024. *)
Definition sgd_gen_fits (m1 m2 m3 m4 : pmode) (lr wd damp1 mom g theta buf : R) : Prop :=
  let d := rnd64 (g + opt m1 (wd * theta)) in
  let b := rnd64 (opt m2 (mom * buf) + opt m3 (damp1 * d)) in
  opt_fits m1 (wd * theta) /\ fits d /\ opt_fits m2 (mom * buf) /\
  opt_fits m3 (damp1 * d) /\ fits b /\ opt_fits m4 ((- lr) * b) /\
  fits (rnd64 (theta + opt m4 ((- lr) * b))).

Lemma axpy64_val (m : pmode) (a al b : binary64) :
  fin a = true -> fin al = true -> fin b = true ->
  opt_fits m (val al * val b) -> fits (rnd64 (val a + opt m (val al * val b))) ->
  val (axpy64 m a al b) = rnd64 (val a + opt m (val al * val b)) /\
  fin (axpy64 m a al b) = true.
Proof.
  intros Ha Hal Hb Hp Hs. destruct m; cbn [axpy64 opt opt_fits] in *.
  - destruct (mult64 al b Hal Hb Hp) as [V1 I1].
    rewrite <- V1 in Hs |- *. apply plus64; assumption.
  - rewrite Rplus_comm in Hs |- *. apply fma64; assumption.
Qed.

Lemma lin64_val (bm : bmode) (x1 y1 x2 y2 : binary64) :
  fin x1 = true -> fin y1 = true -> fin x2 = true -> fin y2 = true ->
  opt_fits (bm2 bm) (val x1 * val y1) -> opt_fits (bm3 bm) (val x2 * val y2) ->
  fits (rnd64 (opt (bm2 bm) (val x1 * val y1) + opt (bm3 bm) (val x2 * val y2))) ->
  val (lin64 bm x1 y1 x2 y2)
  = rnd64 (opt (bm2 bm) (val x1 * val y1) + opt (bm3 bm) (val x2 * val y2)) /\
  fin (lin64 bm x1 y1 x2 y2) = true.
Proof.
  intros H1 H2 H3 H4 F1 F2 Fs. destruct bm; cbn [lin64 bm2 bm3 opt opt_fits] in *.
  - destruct (mult64 x1 y1 H1 H2 F1) as [V1 I1].
    destruct (mult64 x2 y2 H3 H4 F2) as [V2 I2].
    rewrite <- V1, <- V2 in Fs |- *. apply plus64; assumption.
  - destruct (mult64 x1 y1 H1 H2 F1) as [V1 I1].
    rewrite <- V1 in Fs |- *. rewrite Rplus_comm in Fs |- *. apply fma64; assumption.
  - destruct (mult64 x2 y2 H3 H4 F2) as [V2 I2].
    rewrite <- V2 in Fs |- *. apply fma64; assumption.
Qed.

(* Main theorem: without overflow the IEEE step is the rounded real model. *)
Theorem sgd64_gen_value (m1 : pmode) (bm : bmode) (m4 : pmode)
  (lr wd damp1 mom g theta buf : binary64) :
  fin lr = true -> fin wd = true -> fin damp1 = true -> fin mom = true -> fin g = true ->
  fin theta = true -> fin buf = true ->
  sgd_gen_fits m1 (bm2 bm) (bm3 bm) m4
    (val lr) (val wd) (val damp1) (val mom) (val g) (val theta) (val buf) ->
  val (fst (sgd64_gen m1 bm m4 lr wd damp1 mom g theta buf))
  = fst (sgd_gen m1 (bm2 bm) (bm3 bm) m4
           (val lr) (val wd) (val damp1) (val mom) (val g) (val theta) (val buf)) /\
  val (snd (sgd64_gen m1 bm m4 lr wd damp1 mom g theta buf))
  = snd (sgd_gen m1 (bm2 bm) (bm3 bm) m4
           (val lr) (val wd) (val damp1) (val mom) (val g) (val theta) (val buf)) /\
  fin (fst (sgd64_gen m1 bm m4 lr wd damp1 mom g theta buf)) = true /\
  fin (snd (sgd64_gen m1 bm m4 lr wd damp1 mom g theta buf)) = true.
Proof.
  intros Hlr Hwd Hdp Hmom Hg Hth Hbuf [F1 [F2 [F3 [F4 [F5 [F6 F7]]]]]].
  destruct (axpy64_val m1 g wd theta Hg Hwd Hth F1 F2) as [V1 I1].
  rewrite <- V1 in F4, F5, F6, F7.
  destruct (lin64_val bm mom buf damp1 _ Hmom Hbuf Hdp I1 F3 F4 F5) as [V2 I2].
  rewrite <- V2 in F6, F7.
  destruct (opp64 lr) as [Vo Io]. rewrite Hlr in Io.
  rewrite <- Vo in F6, F7.
  destruct (axpy64_val m4 theta _ _ Hth Io I2 F6 F7) as [V3 I3].
  unfold sgd64_gen, sgd_gen. cbv zeta. cbn [fst snd].
  rewrite V3, Vo, V2, V1.
  repeat split; assumption.
Qed.

(* Main theorem: bit-exact power-of-two rescaling of one IEEE SGD step, for
   every placement of the roundings. *)
Theorem sgd64_gen_bit_exact (m1 : pmode) (bm : bmode) (m4 : pmode) (k : Z)
  (lr wd damp1 mom g theta buf lr' wd' g' theta' buf' : binary64) :
  fin lr = true -> fin wd = true -> fin damp1 = true -> fin mom = true -> fin g = true ->
  fin theta = true -> fin buf = true ->
  fin lr' = true -> fin wd' = true -> fin g' = true -> fin theta' = true -> fin buf' = true ->
  val lr' = val lr * two (2 * k) -> val wd' = val wd * two (- 2 * k) ->
  val g' = val g * two (- k) -> val theta' = val theta * two k ->
  val buf' = val buf * two (- k) ->
  sgd_gen_ok m1 (bm2 bm) (bm3 bm) m4 k
    (val lr) (val wd) (val damp1) (val mom) (val g) (val theta) (val buf) ->
  sgd_gen_fits m1 (bm2 bm) (bm3 bm) m4
    (val lr) (val wd) (val damp1) (val mom) (val g) (val theta) (val buf) ->
  sgd_gen_fits m1 (bm2 bm) (bm3 bm) m4
    (val lr') (val wd') (val damp1) (val mom) (val g') (val theta') (val buf') ->
  val (fst (sgd64_gen m1 bm m4 lr' wd' damp1 mom g' theta' buf'))
  = val (fst (sgd64_gen m1 bm m4 lr wd damp1 mom g theta buf)) * two k /\
  val (snd (sgd64_gen m1 bm m4 lr' wd' damp1 mom g' theta' buf'))
  = val (snd (sgd64_gen m1 bm m4 lr wd damp1 mom g theta buf)) * two (- k) /\
  fin (fst (sgd64_gen m1 bm m4 lr' wd' damp1 mom g' theta' buf')) = true /\
  fin (snd (sgd64_gen m1 bm m4 lr' wd' damp1 mom g' theta' buf')) = true.
Proof.
  intros Hlr Hwd Hdp Hmom Hg Hth Hbuf Hlr' Hwd' Hg' Hth' Hbuf'
         Elr Ewd Eg Eth Ebuf Hok Hfit Hfit'.
  destruct (sgd64_gen_value m1 bm m4 lr wd damp1 mom g theta buf
              Hlr Hwd Hdp Hmom Hg Hth Hbuf Hfit) as [V1 [V2 _]].
  destruct (sgd64_gen_value m1 bm m4 lr' wd' damp1 mom g' theta' buf'
              Hlr' Hwd' Hdp Hmom Hg' Hth' Hbuf' Hfit') as [V1' [V2' [I1' I2']]].
  pose proof (sgd_gen_bit_exact _ _ _ _ k _ _ _ _ _ _ _ Hok) as Hexact.
  rewrite <- Elr, <- Ewd, <- Eg, <- Eth, <- Ebuf in Hexact.
  rewrite V1', V2', V1, V2, Hexact. cbn [fst snd].
  repeat split; assumption.
Qed.
