(* negative/WrongNesterovBuffer.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the one-step invariant of Nesterov.v (Nesterov SGD with weight
   decay == without it, one buffer rewrite per step; a project result
   extending Li & Arora, ICLR 2020) with the buffer only
   rescaled, v~ = c v, without the term (c lambda / gamma) theta of the
   rewrite.  The proof script is the one that succeeds for the full
   rewrite; proofs/coq_check.py checks that coqc rejects this file inside
   [wrong_nesterov_step_invariant] and that the marked line, once fixed,
   compiles.
   Corresponding SymPy module: proofs/nesterov.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Nesterov.
Open Scope R_scope.

Section WrongNesterov.

Variable I : Type.

Definition buf_coef (c0 wd mom : R) : R := 0. (* FIX: c0 * wd / mom. *)

Theorem wrong_nesterov_step_invariant
    (g : vec I -> vec I) (c0 c1 lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0) (Hmom : mom <> 0)
    (Hrec : c1 = (1 - lr * wd) * c0)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale (buf_coef c0 wd mom) theta)) :
  let s' := nest_step g lr wd mom (theta, v) in
  let s_e' := nest_step g (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\ snd s_e' = vscale c0 (snd s').
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold nest_step, buf_coef; simpl.
  rewrite Hg.
  assert (Hc0' : c0 <> 0) by lra.
  subst c1.
  assert (Ha : 1 - lr * wd <> 0) by (intro E; apply Hc1; rewrite E; ring).
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; repeat split; assumption.
  - field; repeat split; assumption.
Qed.

End WrongNesterov.
