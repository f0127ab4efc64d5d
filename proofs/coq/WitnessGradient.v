(* WitnessGradient.v -- the witness of Witness.v is inside the hypothesis
   class of ScaleInvariance.v (Li & Arora, ICLR 2020: scale-invariant losses
   and their gradients), so that every proved negation built on it refutes a
   claim about a genuine scale-invariant differentiable loss.

   Index type bool (true = x1, false = x2), enumerated by [true; false],
   decided by Bool.bool_dec.  The loss L(x) = x1^2 / (x1^2 + x2^2) and the map
       g(x) = ( 2 x1 x2^2 / n^2 , -2 x1^2 x2 / n^2 ),   n = x1^2 + x2^2
   of Witness.v satisfy ScaleInvariance.v's definitions:
     [witness_scale_invariant_loss]  L(c x) = L(x) for c > 0 (every x);
     [witness_has_gradient]          for every x <> 0 and every direction h,
       d/ds L(x + s h) at s = 0 equals <g(x), h>  (Coquelicot's is_derive).
   Hence ScaleInvariance.v's theorems apply to it:
     [witness_grad_homogeneous]  g(c x) = g(x) / c on the cone (c > 0),
     [witness_grad_orthogonal]   <g(x), x> = 0 on the cone.

   Main theorems: [witness_scale_invariant_loss], [witness_has_gradient].
   Corresponding SymPy module: proofs/scale_invariance.py. *)

From Coq Require Import Reals Lra List Bool FunctionalExtensionality.
Set Warnings "-ambiguous-paths".
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Vec ScaleInvariance Witness.
Import ListNotations.
Open Scope R_scope.

Definition widx : list bool := [true; false].

Lemma widx_complete : forall i : bool, In i widx.
Proof. intros [|]; simpl; auto. Qed.

Lemma widx_nodup : NoDup widx.
Proof.
  constructor; [simpl; intros [H | []]; discriminate |].
  constructor; [simpl; tauto | constructor].
Qed.

(* Main theorem: the witness loss is scale invariant. *)
Theorem witness_scale_invariant_loss : scale_invariant bool wloss.
Proof. intros c x Hc. apply witness_scale_invariant. exact Hc. Qed.

Lemma wnorm_nonzero (x : vec bool) : nonzero bool x -> wnorm x <> 0.
Proof.
  intros [i Hi] H0. destruct (wnorm_zero x H0) as [Ht Hf].
  destruct i; contradiction.
Qed.

(* Derivative rules on R, from Coquelicot's is_derive_* (no classical axiom;
   Coquelicot's auto_derive would bring in Classical_Prop.classic). *)
Lemma derive_congr (f g : R -> R) (x l1 l2 : R) :
  (forall s, f s = g s) -> l1 = l2 -> is_derive f x l1 -> is_derive g x l2.
Proof. intros Hfg <- Hf. exact (is_derive_ext f g x l1 Hfg Hf). Qed.

Lemma derive_line (a p x : R) : is_derive (fun s : R => a + s * p) x p.
Proof.
  pose proof (is_derive_plus (K := R_AbsRing) (V := R_NormedModule) (fun _ => a)
                (fun s : R => scal s p) x zero (scal one p)
                (is_derive_const a x) (is_derive_scal_l (fun s : R => s) x one p
                                         (is_derive_id x))) as H.
  apply (derive_congr _ _ x (plus zero (scal one p)) p (fun s => eq_refl)); [| exact H].
  rewrite plus_zero_l, scal_one. reflexivity.
Qed.

Lemma derive_mult (f g : R -> R) (x df dg : R) :
  is_derive f x df -> is_derive g x dg ->
  is_derive (fun s => f s * g s) x (df * g x + f x * dg).
Proof.
  intros Hf Hg. exact (is_derive_mult (K := R_AbsRing) f g x df dg Hf Hg Rmult_comm).
Qed.

Lemma derive_plus (f g : R -> R) (x df dg : R) :
  is_derive f x df -> is_derive g x dg -> is_derive (fun s => f s + g s) x (df + dg).
Proof.
  intros Hf Hg. exact (is_derive_plus (K := R_AbsRing) (V := R_NormedModule) f g x df dg Hf Hg).
Qed.

(* Main theorem: [wgrad] is the gradient of [wloss] on the cone x <> 0. *)
Theorem witness_has_gradient : has_gradient bool [true; false] wloss wgrad.
Proof.
  intros x Hx h.
  pose proof (wnorm_nonzero x Hx) as Hn. unfold wnorm in Hn.
  unfold dot, dotl, wgrad, wloss, wnorm, vadd, vscale.
  pose proof (derive_line (x true) (h true) 0) as Hu.
  pose proof (derive_line (x false) (h false) 0) as Hw.
  pose proof (derive_mult _ _ _ _ _ Hu Hu) as Huu.
  pose proof (derive_mult _ _ _ _ _ Hw Hw) as Hww.
  pose proof (derive_plus _ _ _ _ _ Huu Hww) as Hden.
  assert (Hd0 : (x true + 0 * h true) * (x true + 0 * h true)
                + (x false + 0 * h false) * (x false + 0 * h false) <> 0).
  { rewrite !Rmult_0_l, !Rplus_0_r. exact Hn. }
  pose proof (is_derive_div _ _ 0 _ _ Huu Hden Hd0) as Hd. cbv beta in Hd.
  match type of Hd with
  | is_derive ?f _ ?l => apply (derive_congr f _ 0 l); [intro s; reflexivity | | exact Hd]
  end.
  cbn [fold_right]. rewrite !Rmult_0_l, !Rplus_0_r. field. exact Hn.
Qed.

(* ScaleInvariance.v's theorems, applied to the witness. *)
Corollary witness_grad_homogeneous (c : R) (x : vec bool) :
  0 < c -> nonzero bool x -> wgrad (vscale c x) = vscale (/ c) (wgrad x).
Proof.
  apply (grad_homogeneous bool bool_dec widx widx_complete widx_nodup wloss wgrad
           witness_scale_invariant_loss witness_has_gradient).
Qed.

Corollary witness_grad_orthogonal (x : vec bool) :
  nonzero bool x -> dot bool widx (wgrad x) x = 0.
Proof.
  apply (grad_orthogonal bool widx wloss wgrad
           witness_scale_invariant_loss witness_has_gradient).
Qed.
