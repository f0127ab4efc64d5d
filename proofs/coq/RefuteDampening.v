(* RefuteDampening.v -- the negative control's wrong claim is false, not
   merely unproven ([wrong_damp_scale_refuted]): the one-step
   invariant of Dampening.v (dampened SGD with weight decay == dampened SGD
   without it, LR alone scheduled; a project result extending Li & Arora,
   ICLR 2020) fails with the undampened scale recurrence
   c1 = (1 - eta lambda) c0 + gamma eta kappa0, on a concrete instance inside
   the lemma's hypothesis class; the dampened recurrence
   c1 = (1 - (1 - tau) eta lambda) c0 + gamma eta kappa0 works on the same
   instance.

   Instance: Witness.v's scale-invariant loss L(x) = x1^2 / (x1^2 + x2^2)
   (gradient wgrad, homogeneous of degree -1, g(1, 1) = (1/2, -1/2)),
   theta = (1, 1), v = 0, c0 = 1, kappa0 = 0, eta = 1/2, lambda = 1,
   gamma = 1/2, tau = 1/2.  The weight-decay step reaches
   theta' = (5/8, 7/8).  The wrong scale c1 = 1/2 gives the LR 1 and
   theta~' = (3/4, 5/4), not theta' / c1 = (5/4, 7/4); the right scale
   c1 = 3/4 gives the LR 2/3 and theta~' = (5/6, 7/6) = theta' / c1.

   Main theorem: [wrong_damp_scale_refuted]; [right_damp_scale_instance]:
   [damp_step_invariant] on the same instance.
   Corresponding SymPy module: proofs/dampening.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Dampening Witness.
Open Scope R_scope.

(* The hypotheses of the step lemma at theta = (1, 1), v = 0, c0 = 1, kappa0 = 0. *)
Lemma wone_unscaled : wgrad (vscale (/ 1) wone) = vscale 1 (wgrad wone).
Proof. rewrite Rinv_1, !vscale_1. reflexivity. Qed.

Lemma wone_scaled_1 : wone = vscale (/ 1) wone.
Proof. rewrite Rinv_1, vscale_1. reflexivity. Qed.

Lemma vzero_buffer_1 : @vzero bool = vadd (vscale 1 vzero) (vscale 0 wone).
Proof. apply functional_extensionality; intro i. unfold vadd, vscale, vzero. ring. Qed.

(* Main theorem: the step lemma with the undampened decay term
   (1 - eta lambda) fails on the witness's gradient. *)
Theorem wrong_damp_scale_refuted :
  ~ (forall (c0 c1 k0 k1 lr wd mom damp : R) (theta v theta_e v_e : vec bool),
       wgrad (vscale (/ c0) theta) = vscale c0 (wgrad theta) ->
       0 < c0 -> c1 <> 0 ->
       c1 = (1 - lr * wd) * c0 + mom * lr * k0 ->
       k1 = mom * k0 - (1 - damp) * wd * c0 ->
       theta_e = vscale (/ c0) theta ->
       v_e = vadd (vscale c0 v) (vscale k0 theta) ->
       let s' := damp_step wgrad lr wd mom damp (theta, v) in
       let s_e' := damp_step wgrad (lr / (c0 * c1)) 0 mom damp (theta_e, v_e) in
       fst s_e' = vscale (/ c1) (fst s') /\
       snd s_e' = vadd (vscale c1 (snd s')) (vscale k1 (fst s'))).
Proof.
  intro Hclaim.
  pose proof (Hclaim 1 (/ 2) 0 (- / 2) (/ 2) 1 (/ 2) (/ 2) wone vzero wone vzero
                wone_unscaled ltac:(lra) ltac:(lra) ltac:(lra) ltac:(lra)
                wone_scaled_1 vzero_buffer_1) as H.
  cbv zeta in H.
  pose proof (f_equal (fun x => x true) (proj1 H)) as H1.
  unfold damp_step in H1. cbn [fst snd] in H1. rewrite wgrad_one in H1.
  unfold vscale, vzero, wone in H1. cbn in H1.
  field_simplify in H1. lra.
Qed.

(* The same instance satisfies the step lemma with the right scale c1 = 3/4
   (and kappa1 = -1/2). *)
Lemma right_damp_scale_instance :
  let s' := damp_step wgrad (/ 2) 1 (/ 2) (/ 2) (wone, vzero) in
  let s_e' := damp_step wgrad (/ 2 / (1 * (3 / 4))) 0 (/ 2) (/ 2) (wone, vzero) in
  fst s_e' = vscale (/ (3 / 4)) (fst s') /\
  snd s_e' = vadd (vscale (3 / 4) (snd s')) (vscale (- / 2) (fst s')).
Proof.
  exact (damp_step_invariant bool wgrad 1 (3 / 4) 0 (- / 2) (/ 2) 1 (/ 2) (/ 2)
           wone vzero wone vzero wone_unscaled ltac:(lra) ltac:(lra)
           ltac:(lra) ltac:(lra) wone_scaled_1 vzero_buffer_1).
Qed.
