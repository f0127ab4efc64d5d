(* AdamL2.v -- Adam with coupled L2 weight decay (torch.optim.Adam with
   weight_decay = lambda) has no exact equivalent without weight decay: no
   choice of the converted run's hyper-parameters reproduces theta_1 / c_1,
   already at the first step (a project result; refutes extending
   Li & Arora, ICLR 2020, to coupled-L2 Adam by hyper-parameters).

   torch.optim.Adam, first step (k = 1, zero buffers, amsgrad = False), per
   coordinate, with x = G(theta_0) + lambda theta_0 (coupled decay):
       m_1 = (1 - beta1) x,   v_1 = (1 - beta2) x^2,
       theta_1 = theta_0 - eta / (1 - beta1) * m_1 / (sqrt v_1 / sqrt (1 - beta2) + eps)
   which is theta_0 - eta x / (|x| + eps) ([stock_first_step], x > 0 here).

   Refuted (what proofs/adam_l2.py's part (a) states): for the converted
   run -- the same first step with lambda = 0 from theta_0 / c_0, gradient
   G(theta_0 / c_0) = c_0 G(theta_0) -- there are NO eta~, eps~, beta1~,
   beta2~ (any reals) and NO scales c_0 > 0, c_1 with
   theta~_1 = theta_1 / c_1, whatever the stock run's betas in [0, 1).
   Instance: four coordinates, theta_0 = (1, 0, 2, 1), G(theta_0) =
   (1, 1, 0, -1) (orthogonal to theta_0; the gradient of the scale-invariant
   loss L(x) = (x_0 + x_1 - x_3) / x_0), eta = 1/10, lambda = 1/2,
   eps = 1/100.  The coordinates (1, 1) and (0, 1) share the gradient, so the
   converted run moves them alike, and (2, 0) does not move at all; the stock
   run moves them by different amounts.

   Main theorems: [adam_l2_refuted] (the concrete loss) and
   [adam_l2_no_hyperparameters] (any G homogeneous of degree -1 with that
   value at theta_0).  Part (b) of proofs/adam_l2.py (no linear rewrite of
   the moment buffers, a smoothness argument) is not formalised here.
   Corresponding SymPy module: proofs/adam_l2.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec AdamW.
Open Scope R_scope.

(* First step of torch.optim.Adam(weight_decay = wd), one coordinate per i,
   from zero buffers (bias corrections 1 - beta at k = 1). *)
Definition adam1 {I : Type} (g : vec I -> vec I) (lr wd eps b1 b2 : R) (th : vec I)
    : vec I :=
  fun i =>
    let x := g th i + wd * th i in
    thstep lr 0 eps (1 - b1) (1 - b2) (th i) (mstep b1 0 x) (vstep b2 0 x).

(* The stock first step moves a coordinate with x > 0 by eta x / (x + eps),
   whatever the betas. *)
Lemma stock_first_step (lr eps b1 b2 th x : R) :
  0 < x -> 0 <= eps -> b1 < 1 -> b2 < 1 ->
  thstep lr 0 eps (1 - b1) (1 - b2) th (mstep b1 0 x) (vstep b2 0 x)
  = th - lr * x / (x + eps).
Proof.
  intros Hx He Hb1 Hb2. unfold thstep, mstep, vstep.
  replace (b2 * 0 + (1 - b2) * (x * x)) with ((1 - b2) * (x * x)) by ring.
  rewrite sqrt_mult_alt by lra. rewrite sqrt_square by lra.
  pose proof (sqrt_lt_R0 (1 - b2) ltac:(lra)) as Hs.
  field. repeat split; lra.
Qed.

Inductive coord4 : Type := C0 | C1 | C2 | C3.

Definition theta0 : vec coord4 :=
  fun i => match i with C0 => 1 | C1 => 0 | C2 => 2 | C3 => 1 end.
Definition g0 : vec coord4 :=
  fun i => match i with C0 => 1 | C1 => 1 | C2 => 0 | C3 => -1 end.

Definition eta : R := / 10.
Definition lam : R := / 2.
Definition eps : R := / 100.

(* Any gradient map homogeneous of degree -1 with G(theta_0) = g0. *)
Theorem adam_l2_no_hyperparameters (G : vec coord4 -> vec coord4) (b1 b2 : R) :
  (forall (a : R) (x : vec coord4), 0 < a -> G (vscale a x) = vscale (/ a) (G x)) ->
  G theta0 = g0 -> 0 <= b1 < 1 -> 0 <= b2 < 1 ->
  ~ (exists lrt epst bt1 bt2 c0 c1 : R,
       0 < c0 /\
       adam1 G lrt 0 epst bt1 bt2 (vscale (/ c0) theta0)
       = vscale (/ c1) (adam1 G eta lam eps b1 b2 theta0)).
Proof.
  intros Hhom HG [Hb1 Hb1'] [Hb2 Hb2'] [lrt [epst [bt1 [bt2 [c0 [c1 [Hc0 H]]]]]]].
  assert (Hg : G (vscale (/ c0) theta0) = vscale c0 g0).
  { rewrite Hhom by (apply Rinv_0_lt_compat; exact Hc0).
    rewrite Rinv_inv, HG. reflexivity. }
  pose proof (f_equal (fun x => x C0) H) as E0.
  pose proof (f_equal (fun x => x C1) H) as E1.
  pose proof (f_equal (fun x => x C2) H) as E2.
  unfold adam1 in E0, E1, E2. rewrite Hg, HG in E0, E1, E2.
  unfold vscale, g0, theta0 in E0, E1, E2. cbv beta iota in E0, E1, E2.
  unfold lam, eta, eps in E0, E1, E2.
  rewrite (stock_first_step (/ 10) (/ 100) b1 b2 1 (1 + / 2 * 1)) in E0 by lra.
  rewrite (stock_first_step (/ 10) (/ 100) b1 b2 0 (1 + / 2 * 0)) in E1 by lra.
  rewrite (stock_first_step (/ 10) (/ 100) b1 b2 2 (0 + / 2 * 2)) in E2 by lra.
  (* the converted run: the same move for C0 and C1, none for C2 *)
  rewrite ?Rmult_0_l, ?Rplus_0_r, ?Rmult_1_r, ?Rmult_0_r in E0.
  rewrite ?Rmult_0_l, ?Rplus_0_r, ?Rmult_1_r, ?Rmult_0_r in E1.
  rewrite ?Rmult_0_l, ?Rplus_0_r, ?Rmult_1_r, ?Rmult_0_r in E2.
  unfold thstep in E0, E1, E2.
  assert (Z : mstep bt1 0 0 = 0) by (unfold mstep; ring).
  rewrite Z in E2.
  set (u := lrt / (1 - bt1) * (mstep bt1 0 c0 / (sqrt (vstep bt2 0 c0) / sqrt (1 - bt2)
                                                    + epst))) in E0, E1.
  assert (Hp : 0 < / c0) by (apply Rinv_0_lt_compat; exact Hc0).
  set (p := / c0) in *. set (q := / c1) in *.
  unfold Rdiv in E2. rewrite Rmult_0_l, Rmult_0_r in E2.
  replace (1 - / 10 * (1 + / 2) / (1 + / 2 + / 100)) with (136 / 151) in E0 by field.
  replace (0 - / 10 * (1 + 0) / (1 + 0 + / 100)) with (- (10 / 101)) in E1 by field.
  replace (2 - / 10 * (0 + / 2 * 2) * / (0 + / 2 * 2 + / 100)) with (192 / 101) in E2
    by field.
  (* E0: p - u = 136/151 q,  E1: - u = -10/101 q,  E2: 2 p = 192/101 q, p > 0 *)
  lra.
Qed.

(* The concrete scale-invariant loss L(x) = (x_0 + x_1 - x_3) / x_0 and its
   gradient (set to 0 where x_0 = 0, by Coq's convention / 0 = 0). *)
Definition grad_ex (x : vec coord4) : vec coord4 :=
  fun i => match i with
           | C0 => - (x C1 - x C3) / (x C0 * x C0)
           | C1 => / x C0
           | C2 => 0
           | C3 => - / x C0
           end.

Lemma grad_ex_homogeneous (a : R) (x : vec coord4) :
  0 < a -> grad_ex (vscale a x) = vscale (/ a) (grad_ex x).
Proof.
  intro Ha. apply functional_extensionality; intro i.
  unfold grad_ex, vscale.
  destruct (Req_dec (x C0) 0) as [H0 | H0].
  - destruct i; unfold Rdiv; rewrite ?H0, ?Rmult_0_r, ?Rmult_0_l, ?Rinv_0; ring.
  - destruct i; field; repeat split; lra.
Qed.

Lemma grad_ex_theta0 : grad_ex theta0 = g0.
Proof.
  apply functional_extensionality; intro i.
  destruct i; unfold grad_ex, theta0, g0; simpl; field.
Qed.

(* Main theorem: the concrete instance. *)
Theorem adam_l2_refuted (b1 b2 : R) :
  0 <= b1 < 1 -> 0 <= b2 < 1 ->
  ~ (exists lrt epst bt1 bt2 c0 c1 : R,
       0 < c0 /\
       adam1 grad_ex lrt 0 epst bt1 bt2 (vscale (/ c0) theta0)
       = vscale (/ c1) (adam1 grad_ex eta lam eps b1 b2 theta0)).
Proof.
  intros Hb1 Hb2.
  apply adam_l2_no_hyperparameters; [exact grad_ex_homogeneous | exact grad_ex_theta0
                                     | exact Hb1 | exact Hb2].
Qed.
