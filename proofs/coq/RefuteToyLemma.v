(* RefuteToyLemma.v -- the toy lemma (ToyLemma.v; the lemma behind the toy
   counterexample of Li & Arora, ICLR 2020) needs weight decay lambda > 0:
   weakened to lambda >= 0 ("with or without weight decay, a scale-invariant
   loss has no stationary point but 0") it is false.  The wrong claim is
   refuted for the gradient of a concrete scale-invariant loss, and the right
   statement (lambda > 0) holds for the same loss.

   Instance: Witness.v's loss L(x) = x1^2 / (x1^2 + x2^2) on two coordinates
   (ToyLemma.v's index 0 is x1, index 1 is x2), with gradient [wgrad]; it is
   orthogonal to x everywhere ([wgrad_nat_orth]).  With lambda = 0 the point
   theta = (0, 1), a minimiser of L, has gradient 0: it is a stationary
   point of L + (lambda/2) |theta|^2 other than 0.

   Main theorem: [toy_no_weight_decay_refuted]; the right statement on the
   same loss: [toy_lemma_instance].
   Corresponding SymPy module: proofs/toy_lemma.py. *)

From Coq Require Import Reals Lra Lia.
From ExpLR Require Import Vec Witness ToyLemma.
Open Scope R_scope.

(* ToyLemma.v's coordinates 0, 1 as Witness.v's x1, x2. *)
Definition to_bool_vec (theta : nat -> R) : vec bool :=
  fun b => if b then theta 0%nat else theta 1%nat.

Definition wgrad_nat (theta : nat -> R) : nat -> R :=
  fun i => match i with
           | O => wgrad (to_bool_vec theta) true
           | S O => wgrad (to_bool_vec theta) false
           | _ => 0
           end.

(* Scale invariance: the gradient is orthogonal to theta. *)
Lemma wgrad_nat_orth (theta : nat -> R) : dot 2 (wgrad_nat theta) theta = 0.
Proof.
  unfold dot, wgrad_nat, wgrad, wnorm, to_bool_vec; simpl. unfold Rdiv. ring.
Qed.

Definition toy_theta (i : nat) : R := match i with S O => 1 | _ => 0 end.

(* Main theorem: with lambda >= 0 in place of lambda > 0 the lemma fails. *)
Theorem toy_no_weight_decay_refuted :
  ~ (forall (lam : R) (theta : nat -> R),
       0 <= lam ->
       dot 2 (wgrad_nat theta) theta = 0 ->
       (forall i, (i < 2)%nat -> wgrad_nat theta i + lam * theta i = 0) ->
       forall i, (i < 2)%nat -> theta i = 0).
Proof.
  intro Hclaim.
  assert (Hg : forall i, (i < 2)%nat -> wgrad_nat toy_theta i + 0 * toy_theta i = 0).
  { intros i Hi. destruct i as [| [| i]]; [| | lia];
      unfold wgrad_nat, wgrad, wnorm, to_bool_vec, toy_theta; simpl; field. }
  pose proof (Hclaim 0 toy_theta (Rle_refl 0) (wgrad_nat_orth toy_theta) Hg 1%nat
                ltac:(lia)) as H1.
  unfold toy_theta in H1. lra.
Qed.

(* The same loss with weight decay lambda > 0: the only stationary point is 0. *)
Lemma toy_lemma_instance (lam : R) (theta : nat -> R) :
  0 < lam ->
  (forall i, (i < 2)%nat -> wgrad_nat theta i + lam * theta i = 0) ->
  forall i, (i < 2)%nat -> theta i = 0.
Proof.
  intros Hlam Hstat.
  exact (toy_stationary_point_zero 2 lam (wgrad_nat theta) theta Hlam
           (wgrad_nat_orth theta) Hstat).
Qed.
