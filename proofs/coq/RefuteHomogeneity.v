(* RefuteHomogeneity.v -- the negative control's wrong claim, "the gradient
   of a scale-invariant loss is homogeneous of degree +1, g(c x) = c g(x) for
   c > 0 and x <> 0", is false, not merely unproven
   ([wrong_homogeneity_refuted]): the gradient of a scale-invariant loss
   (Li & Arora, ICLR 2020, the gradient lemma; here ScaleInvariance.v's
   [grad_homogeneous]) is not homogeneous of degree +1 on a concrete
   scale-invariant loss, whose gradient is homogeneous of degree -1,
   g(c x) = g(x) / c, as the lemma says.

   Instance: Witness.v's loss L(x) = x1^2 / (x1^2 + x2^2) on two coordinates
   with the map wgrad, inside ScaleInvariance.v's hypothesis class
   (WitnessGradient.v: L is scale invariant and wgrad is its gradient);
   c = 2, x = (1, 1): g(2, 2) = (1/4, -1/4), while 2 g(1, 1) = (1, -1)
   (and g(1, 1) / 2 = (1/4, -1/4)).

   Main theorem: [wrong_homogeneity_refuted]; [right_homogeneity_instance]:
   the hypotheses of [grad_homogeneous] and its right statement (degree -1)
   on the same loss, as an instance of [grad_homogeneous].
   Corresponding SymPy module: proofs/scale_invariance.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
Set Warnings "-ambiguous-paths".
From ExpLR Require Import Vec ScaleInvariance Witness WitnessGradient.
Open Scope R_scope.

Lemma wone_nonzero : nonzero bool wone.
Proof. exists true. unfold wone. lra. Qed.

(* Main theorem: g(c x) = c g(x) fails at c = 2, x = (1, 1). *)
Theorem wrong_homogeneity_refuted :
  ~ (forall (c : R) (x : vec bool),
       0 < c -> nonzero bool x -> wgrad (vscale c x) = vscale c (wgrad x)).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun y => y true) (Hclaim 2 wone ltac:(lra) wone_nonzero)) as H.
  cbv beta in H. rewrite wgrad_one in H.
  unfold wgrad, wnorm, vscale, wone in H.
  field_simplify in H. lra.
Qed.

(* The same loss satisfies the hypotheses of ScaleInvariance.v's
   [grad_homogeneous], and its gradient the right statement (degree -1). *)
Lemma right_homogeneity_instance :
  scale_invariant bool wloss /\ has_gradient bool widx wloss wgrad /\
  (forall (c : R) (x : vec bool),
     0 < c -> nonzero bool x -> wgrad (vscale c x) = vscale (/ c) (wgrad x)).
Proof.
  split; [exact witness_scale_invariant_loss |].
  split; [exact witness_has_gradient |].
  exact (grad_homogeneous bool Bool.bool_dec widx widx_complete widx_nodup wloss wgrad
           witness_scale_invariant_loss witness_has_gradient).
Qed.
