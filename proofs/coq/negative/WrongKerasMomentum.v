(* negative/WrongKerasMomentum.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the one-step invariant of LrInVelocity.v (the LR inside the
   velocity, with weight decay == without it; a project result extending
   Li & Arora, ICLR 2020) with the momentum left at
   gamma instead of gamma~ = gamma c_{t-1} / c_{t+1}.  The proof script is
   the one that succeeds for the scheduled momentum; proofs/coq_check.py
   checks that coqc rejects this file inside [wrong_keras_step_invariant]
   and that the marked line, once fixed, compiles.
   Corresponding SymPy module: proofs/lr_in_velocity.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec LrInVelocity.
Open Scope R_scope.

Section WrongKeras.

Variable I : Type.

Definition mom_map (mom cp c1 : R) : R := mom. (* FIX: mom * cp / c1. *)

Theorem wrong_keras_step_invariant
    (g : vec I -> vec I) (cp c0 c1 lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hcp : cp <> 0) (Hc0 : c0 <> 0) (Hc1 : c1 <> 0)
    (Hrec : c1 = (1 + mom - lr * wd) * c0 - mom * cp)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale (/ cp) v) (vscale (/ c0 - / cp) theta)) :
  let s' := keras_step g lr wd mom (theta, v) in
  let s_e' := keras_step g (lr / (c0 * c1)) 0 (mom_map mom cp c1) (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale (/ c0) (snd s')) (vscale (/ c1 - / c0) (fst s')).
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold keras_step, mom_map; simpl.
  rewrite Hg.
  subst c1.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; repeat split; assumption.
  - field; repeat split; assumption.
Qed.

End WrongKeras.
