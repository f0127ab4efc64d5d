(* Rescaling.v -- exact rescaling of an exponential-LR run (the project's
   "never overflowing" device for Li & Arora, ICLR 2020): for s > 0, mapping
       (theta, v, eta~)  to  (s theta, v / s, s^2 eta~)
   commutes with a step of momentum SGD without weight decay, given a
   degree -1 homogeneous gradient.  Consequently a whole run started from the
   rescaled state, with every LR multiplied by s^2, stays at the rescaled
   state of the original run.

   Main theorems: [rescale_step_commutes] and [rescale_run].
   Corresponding SymPy module: proofs/rescaling.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
Open Scope R_scope.

Section Rescaling.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variable gamma : R.                          (* momentum *)
Variable s : R.                              (* the rescaling factor *)

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis s_pos : 0 < s.

Definition rescale (st : vec I * vec I) : vec I * vec I :=
  (vscale s (fst st), vscale (/ s) (snd st)).

(* Main theorem: one no-WD momentum step commutes with the rescaling. *)
Theorem rescale_step_commutes (t : nat) (lr : R) (st : vec I * vec I) :
  sgd_step (G t) (s ^ 2 * lr) 0 gamma (rescale st)
  = rescale (sgd_step (G t) lr 0 gamma st).
Proof.
  destruct st as [theta v].
  unfold rescale, sgd_step; simpl.
  rewrite (G_homogeneous t s theta s_pos).
  assert (Hs : s <> 0) by lra.
  f_equal; apply functional_extensionality; intro i; unfold vscale.
  - field. exact Hs.
  - field. exact Hs.
Qed.

(* Main theorem: a whole run from a rescaled state with LR s^2 eta~_t is the
   rescaled run. *)
Theorem rescale_run (lr : nat -> R) (st0 : vec I * vec I) (t : nat) :
  run G (fun u => s ^ 2 * lr u) (fun _ => 0) gamma (rescale st0) t
  = rescale (run G lr (fun _ => 0) gamma st0 t).
Proof.
  induction t as [| t IH].
  - reflexivity.
  - cbn [run]. rewrite IH. apply rescale_step_commutes.
Qed.

End Rescaling.
