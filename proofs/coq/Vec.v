(* Vec.v -- shared definitions for the Coq formalisation of
   Li & Arora, "An Exponential Learning Rate Schedule for Deep Learning"
   (ICLR 2020).

   Not a result of the paper by itself: it fixes the abstract parameter
   space used by every other file.  A parameter vector is a function from an
   arbitrary index type [I] to the reals, with pointwise operations; vector
   equalities are proven coordinatewise and closed with functional
   extensionality.

   The only property of scale invariance the theorems use is that the
   per-step gradient map G_t is homogeneous of degree -1 on the open ray:
       G_t (c * theta) = G_t theta / c      for every c > 0.
   Corresponding SymPy code: none (each proofs/*.py module states the same
   hypothesis symbolically). *)

From Coq Require Import Reals Lra FunctionalExtensionality.
Open Scope R_scope.

Section Vectors.

Variable I : Type.

Definition vec : Type := I -> R.

Definition vzero : vec := fun _ => 0.
Definition vadd (x y : vec) : vec := fun i => x i + y i.
Definition vsub (x y : vec) : vec := fun i => x i - y i.
Definition vscale (a : R) (x : vec) : vec := fun i => a * x i.

(* Degree -1 homogeneity of the per-step gradient map G : nat -> vec -> vec. *)
Definition homogeneous_m1 (G : nat -> vec -> vec) : Prop :=
  forall (t : nat) (c : R) (x : vec), 0 < c -> G t (vscale c x) = vscale (/ c) (G t x).

Lemma vscale_1 (x : vec) : vscale 1 x = x.
Proof.
  apply functional_extensionality; intro i; unfold vscale; ring.
Qed.

(* Applying G at theta / c gives c times G at theta. *)
Lemma homogeneous_at_inv (G : nat -> vec -> vec) (t : nat) (c : R) (x : vec) :
  homogeneous_m1 G -> 0 < c -> G t (vscale (/ c) x) = vscale c (G t x).
Proof.
  intros Hhom Hc.
  rewrite (Hhom t (/ c) x (Rinv_0_lt_compat c Hc)).
  rewrite Rinv_inv.
  reflexivity.
Qed.

End Vectors.

Arguments vzero {I}.
Arguments vadd {I} x y.
Arguments vsub {I} x y.
Arguments vscale {I} a x.
Arguments homogeneous_m1 {I} G.
Arguments vscale_1 {I} x.
Arguments homogeneous_at_inv {I} G t c x.
