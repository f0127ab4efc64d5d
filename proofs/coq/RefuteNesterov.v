(* RefuteNesterov.v -- the negative control's wrong claim is false, not
   merely unproven ([wrong_nesterov_buffer_refuted]): the one-step
   invariant of Nesterov.v (Nesterov SGD with weight decay == without it, one
   buffer rewrite per step; a project result extending Li & Arora, ICLR 2020)
   fails when the buffer is only rescaled, v~ = c v, without the term
   (c lambda / gamma) theta of the rewrite, on a concrete instance inside the
   lemma's hypothesis class; the full rewrite works on the same instance.

   Instance: Witness.v's scale-invariant loss L(x) = x1^2 / (x1^2 + x2^2)
   (gradient wgrad, homogeneous of degree -1, g(1, 1) = (1/2, -1/2)),
   theta = (1, 1), v = 0, c0 = 1, eta = 1/2, lambda = 1, gamma = 1/2, so
   c1 = (1 - eta lambda) c0 = 1/2 and the converted LR is 1.  The
   weight-decay step reaches theta' = (-1/8, 5/8), theta' / c1 = (-1/4, 5/4).
   From the buffer v~ = 0 the converted step reaches (1/4, 7/4); from the
   rewritten buffer v~ = (2, 2) it reaches (-1/4, 5/4).

   Main theorem: [wrong_nesterov_buffer_refuted]; [right_nesterov_buffer_instance]:
   [nesterov_step_invariant] on the same instance.
   Corresponding SymPy module: proofs/nesterov.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Nesterov Witness.
Open Scope R_scope.

Lemma nwone_unscaled : wgrad (vscale (/ 1) wone) = vscale 1 (wgrad wone).
Proof. rewrite Rinv_1, !vscale_1. reflexivity. Qed.

Lemma nwone_scaled_1 : wone = vscale (/ 1) wone.
Proof. rewrite Rinv_1, vscale_1. reflexivity. Qed.

(* Main theorem: the step lemma with the buffer only rescaled (coefficient 0
   on theta instead of c0 lambda / gamma) fails on the witness's gradient. *)
Theorem wrong_nesterov_buffer_refuted :
  ~ (forall (c0 c1 lr wd mom : R) (theta v theta_e v_e : vec bool),
       wgrad (vscale (/ c0) theta) = vscale c0 (wgrad theta) ->
       0 < c0 -> c1 <> 0 -> mom <> 0 ->
       c1 = (1 - lr * wd) * c0 ->
       theta_e = vscale (/ c0) theta ->
       v_e = vadd (vscale c0 v) (vscale 0 theta) ->
       let s' := nest_step wgrad lr wd mom (theta, v) in
       let s_e' := nest_step wgrad (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
       fst s_e' = vscale (/ c1) (fst s') /\ snd s_e' = vscale c0 (snd s')).
Proof.
  intro Hclaim.
  pose proof (Hclaim 1 (/ 2) (/ 2) 1 (/ 2) wone vzero wone
                (vadd (vscale 1 vzero) (vscale 0 wone))
                nwone_unscaled ltac:(lra) ltac:(lra) ltac:(lra) ltac:(lra)
                nwone_scaled_1 eq_refl) as H.
  cbv zeta in H.
  pose proof (f_equal (fun x => x true) (proj1 H)) as H1.
  unfold nest_step in H1. cbn [fst snd] in H1. rewrite wgrad_one in H1.
  unfold vadd, vscale, vzero, wone in H1. cbn in H1.
  field_simplify in H1. lra.
Qed.

(* The same instance satisfies the step lemma with the rewritten buffer
   v~ = c0 v + (c0 lambda / gamma) theta = (2, 2). *)
Lemma right_nesterov_buffer_instance :
  let s' := nest_step wgrad (/ 2) 1 (/ 2) (wone, vzero) in
  let s_e' := nest_step wgrad (/ 2 / (1 * / 2)) 0 (/ 2)
                (wone, vadd (vscale 1 vzero) (vscale (1 * 1 / / 2) wone)) in
  fst s_e' = vscale (/ / 2) (fst s') /\ snd s_e' = vscale 1 (snd s').
Proof.
  exact (nesterov_step_invariant bool wgrad 1 (/ 2) (/ 2) 1 (/ 2) wone vzero wone
           (vadd (vscale 1 vzero) (vscale (1 * 1 / / 2) wone))
           nwone_unscaled ltac:(lra) ltac:(lra) ltac:(lra) ltac:(lra)
           nwone_scaled_1 eq_refl).
Qed.
