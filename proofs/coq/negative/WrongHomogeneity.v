(* negative/WrongHomogeneity.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the gradient lemma of ScaleInvariance.v (the gradient of a
   scale-invariant loss, Li & Arora, ICLR 2020) with the wrong degree:
   g(c x) = c g(x) (degree +1) instead of g(x) / c.  The proof script is the
   one that succeeds for the right statement; proofs/coq_check.py checks that
   coqc rejects this file inside [wrong_grad_homogeneous] and that the file
   compiles once the marked line is replaced by the text after "FIX:".
   Corresponding SymPy module: proofs/scale_invariance.py. *)

From Coq Require Import Reals Lra List FunctionalExtensionality.
Set Warnings "-ambiguous-paths".
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Vec ScaleInvariance.
Open Scope R_scope.

Section WrongHomogeneity.

Variable I : Type.
Hypothesis I_dec : forall i j : I, {i = j} + {i <> j}.
Variable idx : list I.
Hypothesis idx_complete : forall i, In i idx.
Hypothesis idx_nodup : NoDup idx.
Variable L : vec I -> R.
Variable g : vec I -> vec I.
Hypothesis L_scale_invariant : scale_invariant I L.
Hypothesis L_gradient : has_gradient I idx L g.

Definition grad_factor (c : R) : R := c. (* FIX: / c. *)

Theorem wrong_grad_homogeneous (c : R) (x : vec I) :
  0 < c -> nonzero I x -> g (vscale c x) = vscale (grad_factor c) (g x).
Proof.
  intros Hc Hx. unfold grad_factor. apply functional_extensionality; intro i.
  unfold vscale at 2.
  rewrite <- (dot_basis I I_dec idx idx_complete idx_nodup (g (vscale c x)) i),
          <- (dot_basis I I_dec idx idx_complete idx_nodup (g x) i).
  apply (directional_homogeneous I idx L g L_scale_invariant L_gradient); assumption.
Qed.

End WrongHomogeneity.
