(* RefuteAdamL2.v -- the negative control's wrong claim is false, not
   merely unproven ([l2_map_refuted]): AdamW's map
   (eta~ = eta / c_1, eps~ = eps, the same betas, c_0 = 1, c_1 = 1 - eta lambda)
   does not carry the first step of torch.optim.Adam with COUPLED L2 decay
   (x = g + lambda theta through the moments) onto Adam without weight decay,
   while it does carry AdamW's (decoupled) first step on the same instance
   (extending Li & Arora, ICLR 2020, to Adam; see AdamL2.v for the stronger
   result that no hyper-parameters at all work on its four-coordinate loss).

   The claim [l2_map_claim]: the converted step (eta / c_1, no weight decay)
   equals the coupled-L2 stock step divided by c_1 = 1 - eta lambda, on one
   coordinate, first step, zero buffers.
   Instance: theta = 1 and g = 1/2, the first coordinate of Witness.v's point
   wone = (1, 1) and of its scale-invariant loss's gradient there,
   wgrad wone = (1/2, -1/2); eta = 1/10, lambda = 1/2, eps = 1/100,
   beta1 = 9/10, beta2 = 999/1000 (c_1 = 19/20).  The converted step gives
   869/969, the coupled stock step divided by c_1 gives 1820/1919; the
   decoupled step divided by c_1 gives 869/969 too.  The same instance as a
   run of the two-coordinate witness (gradient map [wgrad], degree -1
   homogeneous): [l2_map_refuted_witness], [adamw_map_witness].

   Main theorems: [l2_map_refuted], [l2_map_refuted_witness]; the right
   statement on the same instance: [adamw_map_instance], [adamw_map_witness].
   Corresponding SymPy module: proofs/adam_l2.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec Witness AdamW AdamL2.
Open Scope R_scope.

(* The wrong claim: AdamW's map on the coupled-L2 stock step. *)
Definition l2_map_claim : Prop :=
  forall lr wd eps b1 b2 th g : R,
    0 < 1 - lr * wd -> 0 < eps -> b1 < 1 -> b2 < 1 ->
    thstep (lr / (1 - lr * wd)) 0 eps (1 - b1) (1 - b2) th (mstep b1 0 g) (vstep b2 0 g)
    = / (1 - lr * wd)
      * thstep lr 0 eps (1 - b1) (1 - b2) th (mstep b1 0 (g + wd * th))
               (vstep b2 0 (g + wd * th)).

(* The decoupled (AdamW) first step: (1 - lr wd) th - lr x / (x + eps). *)
Lemma decoupled_first_step (lr wd eps b1 b2 th x : R) :
  0 < x -> 0 <= eps -> b1 < 1 -> b2 < 1 ->
  thstep lr wd eps (1 - b1) (1 - b2) th (mstep b1 0 x) (vstep b2 0 x)
  = (1 - lr * wd) * th - lr * x / (x + eps).
Proof.
  intros Hx He Hb1 Hb2.
  pose proof (stock_first_step lr eps b1 b2 th x Hx He Hb1 Hb2) as H.
  unfold thstep in *. lra.
Qed.

(* The right statement, for every coordinate value (the FIX of the control):
   AdamW's map carries the decoupled first step. *)
Lemma decoupled_map (lr wd eps c1 c2 th m v : R) :
  1 - lr * wd <> 0 -> c1 <> 0 ->
  thstep (lr / (1 - lr * wd)) 0 eps c1 c2 th m v
  = / (1 - lr * wd) * thstep lr wd eps c1 c2 th m v.
Proof.
  intros Hc Hc1. unfold thstep.
  set (u := m / (sqrt v / sqrt c2 + eps)). field. split; assumption.
Qed.

(* Instance values. *)
Definition i_lr : R := / 10.
Definition i_wd : R := / 2.
Definition i_eps : R := / 100.
Definition i_b1 : R := 9 / 10.
Definition i_b2 : R := 999 / 1000.

Lemma instance_values :
  thstep (i_lr / (1 - i_lr * i_wd)) 0 i_eps (1 - i_b1) (1 - i_b2) 1
         (mstep i_b1 0 (/ 2)) (vstep i_b2 0 (/ 2)) = 869 / 969 /\
  / (1 - i_lr * i_wd) * thstep i_lr 0 i_eps (1 - i_b1) (1 - i_b2) 1
         (mstep i_b1 0 (/ 2 + i_wd * 1)) (vstep i_b2 0 (/ 2 + i_wd * 1)) = 1820 / 1919 /\
  / (1 - i_lr * i_wd) * thstep i_lr i_wd i_eps (1 - i_b1) (1 - i_b2) 1
         (mstep i_b1 0 (/ 2)) (vstep i_b2 0 (/ 2)) = 869 / 969.
Proof.
  unfold i_lr, i_wd, i_eps, i_b1, i_b2.
  rewrite stock_first_step by lra. rewrite stock_first_step by lra.
  rewrite decoupled_first_step by lra.
  repeat split; field.
Qed.

(* Main theorem: AdamW's map on the coupled-L2 stock step is false. *)
Theorem l2_map_refuted : ~ l2_map_claim.
Proof.
  intro H.
  pose proof (H i_lr i_wd i_eps i_b1 i_b2 1 (/ 2)) as E.
  destruct instance_values as [E1 [E2 _]].
  rewrite E1, E2 in E by (unfold i_lr, i_wd, i_eps, i_b1, i_b2; lra).
  assert (Hne : 869 / 969 <> 1820 / 1919) by lra.
  apply Hne, E; unfold i_lr, i_wd, i_eps, i_b1, i_b2; lra.
Qed.

(* The right statement (decoupled decay, AdamW) on the same instance. *)
Lemma adamw_map_instance :
  thstep (i_lr / (1 - i_lr * i_wd)) 0 i_eps (1 - i_b1) (1 - i_b2) 1
         (mstep i_b1 0 (/ 2)) (vstep i_b2 0 (/ 2))
  = / (1 - i_lr * i_wd) * thstep i_lr i_wd i_eps (1 - i_b1) (1 - i_b2) 1
                                 (mstep i_b1 0 (/ 2)) (vstep i_b2 0 (/ 2)).
Proof. apply decoupled_map; unfold i_lr, i_wd, i_b1; lra. Qed.

(* The same on the witness run: the first step of torch.optim.Adam(weight_decay
   = 1/2) from wone with the gradient map wgrad (AdamL2.v's [adam1]), and the
   converted first step (AdamW's map, no decay, from wone / c_0 = wone). *)
Definition adamw1 {I : Type} (g : vec I -> vec I) (lr wd eps b1 b2 : R) (th : vec I)
    : vec I :=
  fun i => thstep lr wd eps (1 - b1) (1 - b2) (th i) (mstep b1 0 (g th i)) (vstep b2 0 (g th i)).

Theorem l2_map_refuted_witness :
  adam1 wgrad (i_lr / (1 - i_lr * i_wd)) 0 i_eps i_b1 i_b2 wone
  <> vscale (/ (1 - i_lr * i_wd)) (adam1 wgrad i_lr i_wd i_eps i_b1 i_b2 wone).
Proof.
  intro H. pose proof (f_equal (fun x => x true) H) as E. clear H.
  unfold adam1, vscale in E. cbv beta in E.
  rewrite wgrad_one in E. unfold wone in E. cbv beta iota in E.
  rewrite Rmult_0_l, Rplus_0_r in E.
  destruct instance_values as [E1 [E2 _]]. rewrite E1, E2 in E. lra.
Qed.

Lemma adamw_map_witness :
  adam1 wgrad (i_lr / (1 - i_lr * i_wd)) 0 i_eps i_b1 i_b2 wone
  = vscale (/ (1 - i_lr * i_wd)) (adamw1 wgrad i_lr i_wd i_eps i_b1 i_b2 wone).
Proof.
  apply functional_extensionality; intro i.
  unfold adam1, adamw1, vscale. rewrite Rmult_0_l, Rplus_0_r.
  apply decoupled_map; unfold i_lr, i_wd, i_b1; lra.
Qed.
