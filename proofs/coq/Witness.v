(* Witness.v -- one concrete member of the hypothesis class of the theorems of
   Li & Arora (ICLR 2020) and of this project, used as
   the witness of every proved negation ("the wrong claim fails"), so that a
   refutation cannot rest on a gradient map no scale-invariant loss has.

   Two coordinates (index type bool: true = x1, false = x2) and the loss
       L(x) = x1^2 / (x1^2 + x2^2),
   scale invariant: L(c x) = L(x) for c > 0.  Its gradient on x <> 0 is
       g(x) = ( 2 x1 x2^2 / n^2 , -2 x1^2 x2 / n^2 ),   n = x1^2 + x2^2,
   which is 0 at the origin as written (Coq's / 0 = 0), homogeneous of degree
   -1 everywhere, and orthogonal to x.  At x = (1, 1): g = (1/2, -1/2).

   One dimension has no such witness: there the only gradient of a
   scale-invariant loss is 0, for which the weight-decay run and every
   rescaled run coincide whatever the learning rate.

   [witness_homogeneous] is the hypothesis [homogeneous_m1] of the theorems;
   WitnessGradient.v proves that [wgrad] is the gradient of [wloss] in
   ScaleInvariance.v's sense.
   Corresponding SymPy module: proofs/scale_invariance.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

Definition wnorm (x : vec bool) : R := x true * x true + x false * x false.

Definition wloss (x : vec bool) : R := x true * x true / wnorm x.

Definition wgrad (x : vec bool) : vec bool :=
  fun i =>
    if i then 2 * x true * (x false * x false) / (wnorm x * wnorm x)
    else - (2 * (x true * x true) * x false) / (wnorm x * wnorm x).

(* The per-step gradient map of the witness: the same loss at every step. *)
Definition wG (t : nat) : vec bool -> vec bool := wgrad.

(* The point (1, 1) and a few values used by the refutations. *)
Definition wone : vec bool := fun _ => 1.

Lemma wgrad_one : wgrad wone = fun i => if i then / 2 else - / 2.
Proof.
  apply functional_extensionality; intros [|]; unfold wgrad, wnorm, wone; field.
Qed.

Lemma wnorm_zero (x : vec bool) : wnorm x = 0 -> x true = 0 /\ x false = 0.
Proof.
  unfold wnorm. intro H.
  pose proof (Rle_0_sqr (x true)) as H1. pose proof (Rle_0_sqr (x false)) as H2.
  unfold Rsqr in H1, H2.
  split; nra.
Qed.

Lemma witness_scale_invariant (c : R) (x : vec bool) :
  0 < c -> wloss (vscale c x) = wloss x.
Proof.
  intro Hc. unfold wloss, wnorm, vscale.
  destruct (Req_EM_T (wnorm x) 0) as [H0 | H0].
  - destruct (wnorm_zero x H0) as [-> ->].
    replace (c * 0) with 0 by ring. reflexivity.
  - unfold wnorm in H0. field. split; [exact H0 |].
    replace (c * x true * (c * x true) + c * x false * (c * x false))
      with ((c * c) * (x true * x true + x false * x false)) by ring.
    apply Rmult_integral_contrapositive_currified; [nra | exact H0].
Qed.

Theorem witness_homogeneous : homogeneous_m1 wG.
Proof.
  intros t c x Hc. apply functional_extensionality; intro i.
  unfold wG, wgrad, vscale, wnorm.
  destruct (Req_EM_T (wnorm x) 0) as [H0 | H0].
  - destruct (wnorm_zero x H0) as [-> ->].
    replace (c * 0) with 0 by ring.
    destruct i; unfold Rdiv; ring.
  - unfold wnorm in H0.
    assert (Hn : c * x true * (c * x true) + c * x false * (c * x false) <> 0).
    { replace (c * x true * (c * x true) + c * x false * (c * x false))
        with ((c * c) * (x true * x true + x false * x false)) by ring.
      apply Rmult_integral_contrapositive_currified; [nra | exact H0]. }
    destruct i; field; repeat split; (exact H0 || exact Hn || lra).
Qed.
