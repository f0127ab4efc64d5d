(* negative/WrongDampeningScale.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the one-step invariant of Dampening.v (dampened SGD with weight
   decay == dampened SGD without it, LR alone scheduled; a project result
   extending Li & Arora, ICLR 2020) with the scale
   recurrence of the undampened general theorem, c1 = (1 - eta lambda) c0 +
   gamma eta kappa0, instead of the dampened decay term (1 - tau) eta lambda.
   The proof script is the one that succeeds for the right recurrence;
   proofs/coq_check.py checks that coqc rejects this file inside
   [wrong_damp_step_invariant] and that the marked line, once fixed, compiles.
   Corresponding SymPy module: proofs/dampening.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Dampening.
Open Scope R_scope.

Section WrongDampening.

Variable I : Type.

Definition decay (lr wd damp : R) : R := lr * wd. (* FIX: (1 - damp) * lr * wd. *)

Theorem wrong_damp_step_invariant
    (g : vec I -> vec I) (c0 c1 k0 k1 lr wd mom damp : R)
    (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0)
    (Hc : c1 = (1 - decay lr wd damp) * c0 + mom * lr * k0)
    (Hk : k1 = mom * k0 - (1 - damp) * wd * c0)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale k0 theta)) :
  let s' := damp_step g lr wd mom damp (theta, v) in
  let s_e' := damp_step g (lr / (c0 * c1)) 0 mom damp (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale c1 (snd s')) (vscale k1 (fst s')).
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold damp_step, decay in *; simpl.
  rewrite Hg.
  assert (Hc0' : c0 <> 0) by lra.
  subst c1 k1.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; split; assumption.
  - ring.
Qed.

End WrongDampening.
