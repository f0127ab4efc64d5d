(* NormaliserRun.v -- eps_t = eps m_t^2 joined to the training theorem
   (Li & Arora, "An Exponential Learning Rate Schedule for Deep Learning",
   ICLR 2020, main theorem, with normalisers that add eps to the variance).

   With a fixed eps > 0 a normalised network is not scale invariant, so the
   gradient is not homogeneous of degree -1 and the hypothesis of
   GeneralSchedule.v / ScaleInvariance.v fails.  What holds exactly is a
   joint invariance in (theta, eps), and the converted run is exact when its
   step-t normalisers use eps m_t^2 with m_t = 1 / c_t, for every eps > 0
   (not only in the limit eps -> 0).

   (a) The network.  Layers l = 0, 1, ..., depth - 1 act on features h (of
   any type F; h_0 is the input batch).  Layer l computes its normaliser
   groups g, with n(l, g) values each, as x_{l,g}(theta, h) (the value
   [pre l theta h g i]), normalises every group with N_eps (Normaliser.v's
   [normalise]) and then applies an arbitrary map [post] (affine map,
   activation, pooling, skip connection from h, ...) that does not read
   theta.  The loss is an arbitrary function [loss] of the last feature.
   The only requirement: x_{l,g} is homogeneous of degree 1 in theta for a
   fixed input h, x(c theta, h) = c x(theta, h) (e.g. a linear map
   <theta, A(h)>: [linear_pre_homogeneous]).
     [normalised_network_joint_invariant]: for c > 0 and eps > 0,
       L(c theta; c^2 eps) = L(theta; eps).
   (b) The gradient.  If L(. ; eps) has gradient G(. ; eps) for every
   eps > 0 (ScaleInvariance.v's [has_gradient]: every directional derivative
   at theta <> 0 is <G(theta; eps), h>, Coquelicot's [is_derive]) and L is
   jointly invariant, then for theta <> 0, c > 0, eps > 0:
     [grad_joint_homogeneous]   G(c theta; c^2 eps) = G(theta; eps) / c.
   (c) Training.  PyTorch momentum SGD (Momentum.v's [sgd_step]) with LR and
   WD schedules eta_t > 0, lambda_t, momentum gamma, zero buffers, step-t
   gradient G_t(theta; eps) with eps > 0 fixed, against the converted run:
   no weight decay, LR eta~_t = eta_t / (c_t c_{t+1}) (GeneralSchedule.v's
   c, k, exp_lr) and step-t gradient G_t(theta; eps m_t^2), m_t = 1 / c_t.
     [normaliser_eps_training]: if G_t(c theta; c^2 e) = G_t(theta; e) / c
       for c > 0, e > 0 and theta in a set D (all of the space, or the
       cone theta <> 0), and the weight-decay run is in D at steps < t, then
       theta~_t = theta_t / c_t for every t with c_0, ..., c_t > 0 (and the
       buffers satisfy v~_t = c_t v_t + k_t theta_t).
     [normaliser_eps_training_grad]: the same for per-step losses
       L_t(theta; eps), jointly invariant with gradients G_t, D = the cone.
     [normalised_network_training]: the same for the normalised networks of
       (a) (per-step input batch h_0(t)).
   The one-step algebra is Momentum.v's [step_invariant_at]; it is restated
   here as [step_invariant_two] because the two runs now read two different
   gradient maps (eps and eps m_t^2), while [step_invariant_at] uses one.

   Main theorems: [normaliser_eps_training], [normalised_network_joint_invariant],
   [grad_joint_homogeneous], [normaliser_eps_training_grad],
   [normalised_network_training].
   Corresponding SymPy module: proofs/normaliser_eps.py. *)

From Coq Require Import Reals Lra Lia List FunctionalExtensionality.
Set Warnings "-ambiguous-paths".
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Vec Momentum GeneralSchedule ScaleInvariance Normaliser.
Import ListNotations.
Open Scope R_scope.

(* ------------------------------------------------------------------------ *)
(* (a) A normalised network and its joint invariance in (theta, eps).       *)

Definition jointly_invariant {I : Type} (L : vec I -> R -> R) : Prop :=
  forall (c : R) (theta : vec I) (e : R), 0 < c -> 0 < e ->
    L (vscale c theta) (e * c ^ 2) = L theta e.

Section Network.

Variable I : Type.
Variable F : Type.                              (* features between layers *)
Variable pre : nat -> vec I -> F -> nat -> nat -> R.
  (* pre l theta h g i: value i of normaliser group g of layer l *)
Variable size : nat -> nat -> nat.              (* n(l, g): size of group g *)
Variable post : nat -> F -> (nat -> nat -> R) -> F.
  (* post l h N: the layer's output from its input h and normalised groups N *)
Variable loss : F -> R.                         (* downstream loss *)

Definition pre_homogeneous : Prop :=
  forall l c theta h g i, 0 < c -> pre l (vscale c theta) h g i = c * pre l theta h g i.

Definition layer_out (l : nat) (theta : vec I) (eps : R) (h : F) : F :=
  post l h (fun g j => normalise eps (size l g) (pre l theta h g) j).

Fixpoint feature (h0 : F) (theta : vec I) (eps : R) (l : nat) : F :=
  match l with
  | O => h0
  | S l' => layer_out l' theta eps (feature h0 theta eps l')
  end.

Definition net_loss (depth : nat) (h0 : F) (theta : vec I) (eps : R) : R :=
  loss (feature h0 theta eps depth).

Hypothesis pre_hom : pre_homogeneous.

Lemma feature_joint (h0 : F) (c : R) (theta : vec I) (eps : R) (l : nat) :
  0 < c -> 0 < eps -> feature h0 (vscale c theta) (eps * c ^ 2) l = feature h0 theta eps l.
Proof.
  intros Hc He. induction l as [| l IH]; cbn [feature]; [reflexivity |].
  rewrite IH. unfold layer_out. f_equal.
  apply functional_extensionality; intro g. apply functional_extensionality; intro j.
  assert (E : pre l (vscale c theta) (feature h0 theta eps l) g
              = fun i => c * pre l theta (feature h0 theta eps l) g i).
  { apply functional_extensionality; intro i. apply pre_hom. exact Hc. }
  rewrite E. apply normaliser_eps_pos; assumption.
Qed.

(* Main theorem (a): L(c theta; c^2 eps) = L(theta; eps). *)
Theorem normalised_network_joint_invariant (depth : nat) (h0 : F) :
  jointly_invariant (net_loss depth h0).
Proof.
  intros c theta e Hc He. unfold net_loss. f_equal. apply feature_joint; assumption.
Qed.

End Network.

Arguments pre_homogeneous {I F} pre.
Arguments feature {I F} pre size post h0 theta eps l.
Arguments net_loss {I F} pre size post loss depth h0 theta eps.

(* A linear first map theta |-> <theta, A(h)> is homogeneous of degree 1. *)
Lemma dotl_vscale {I : Type} (l : list I) (c : R) (x y : vec I) :
  dotl I l (vscale c x) y = c * dotl I l x y.
Proof.
  induction l as [| a l IH]; simpl; [ring |]. rewrite IH. unfold vscale. ring.
Qed.

Lemma linear_pre_homogeneous {I F : Type} (idx : list I)
    (A : nat -> F -> nat -> nat -> vec I) :
  pre_homogeneous (fun l theta h g i => dot I idx theta (A l h g i)).
Proof. intros l c theta h g i Hc. unfold dot. apply dotl_vscale. Qed.

(* ------------------------------------------------------------------------ *)
(* (b) The gradient of a jointly invariant loss.                            *)

Section JointGradient.

Variable I : Type.
Hypothesis I_dec : forall i j : I, {i = j} + {i <> j}.
Variable idx : list I.
Hypothesis idx_complete : forall i, In i idx.
Hypothesis idx_nodup : NoDup idx.

Variable L : vec I -> R -> R.
Variable g : vec I -> R -> vec I.
Hypothesis L_joint : jointly_invariant L.
Hypothesis L_grad : forall e, 0 < e ->
  has_gradient I idx (fun theta => L theta e) (fun theta => g theta e).

Lemma joint_directional (c e : R) (x h : vec I) :
  0 < c -> 0 < e -> nonzero I x ->
  dot I idx (g (vscale c x) (e * c ^ 2)) h = / c * dot I idx (g x e) h.
Proof.
  intros Hc He Hx.
  assert (Hec : 0 < e * c ^ 2) by (apply Rmult_lt_0_compat; [exact He | apply pow_lt; exact Hc]).
  pose proof (L_grad (e * c ^ 2) Hec (vscale c x) (nonzero_scale I c x Hc Hx) h) as Hcx.
  pose proof (L_grad e He x Hx h) as H1.
  cbv beta in Hcx, H1.
  assert (Hin : is_derive (fun s : R => s / c) 0 (/ c)).
  { apply (is_derive_ext (K := R_AbsRing) (V := R_NormedModule) (fun s => / c * s)).
    - intro s. cbv beta. unfold Rdiv. apply Rmult_comm.
    - pose proof (is_derive_scal (fun s : R => s) 0 (/ c) 1 (is_derive_id (K := R_AbsRing) 0))
        as Hd.
      rewrite Rmult_1_r in Hd. exact Hd. }
  assert (H0 : 0 / c = 0) by (unfold Rdiv; ring).
  rewrite <- H0 in H1.
  pose proof (is_derive_comp (fun s : R => L (vadd x (vscale s h)) e) (fun s => s / c) 0
                _ _ H1 Hin) as Hcomp.
  apply (derive_eq (fun s : R => L (vadd (vscale c x) (vscale s h)) (e * c ^ 2)) 0).
  - exact Hcx.
  - apply is_derive_ext with (fun s => L (vadd x (vscale (s / c) h)) e).
    + intro s.
      rewrite <- (L_joint c (vadd x (vscale (s / c) h)) e Hc He).
      f_equal. apply functional_extensionality; intro i.
      unfold vscale, vadd. field. lra.
    + exact Hcomp.
Qed.

(* Main theorem (b): G(c theta; c^2 eps) = G(theta; eps) / c on the cone. *)
Theorem grad_joint_homogeneous (c e : R) (x : vec I) :
  0 < c -> 0 < e -> nonzero I x -> g (vscale c x) (e * c ^ 2) = vscale (/ c) (g x e).
Proof.
  intros Hc He Hx. apply functional_extensionality; intro i.
  unfold vscale at 2.
  rewrite <- (dot_basis I I_dec idx idx_complete idx_nodup (g (vscale c x) (e * c ^ 2)) i),
          <- (dot_basis I I_dec idx idx_complete idx_nodup (g x e) i).
  apply joint_directional; assumption.
Qed.

End JointGradient.

(* ------------------------------------------------------------------------ *)
(* (c) The training theorem with eps_t = eps m_t^2.                         *)

Section MomentumTwoMaps.

Variable I : Type.

(* Momentum.v's [step_invariant_at] with the weight-decay step reading [gw]
   and the converted step reading [ge]; the homogeneity is the relation
   between the two maps at the current point. *)
Lemma step_invariant_two
    (gw ge : vec I -> vec I)
    (c0 c1 k lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : ge (vscale (/ c0) theta) = vscale c0 (gw theta))
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0) (Hlr : lr <> 0)
    (Hrec : c1 = c0 * (1 - lr * wd) + mom * lr * k)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale k theta)) :
  let s' := sgd_step gw lr wd mom (theta, v) in
  let s_e' := sgd_step ge (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale c1 (snd s')) (vscale ((c1 - c0) / lr) (fst s')).
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold sgd_step; simpl.
  rewrite Hg.
  assert (Hc0' : c0 <> 0) by lra.
  subst c1.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; repeat split; assumption.
  - field; repeat split; assumption.
Qed.

End MomentumTwoMaps.

Section Training.

Variable I : Type.
Variable G : nat -> vec I -> R -> vec I.     (* G_t(theta; eps) *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : R.                          (* momentum *)
Variable eps : R.                            (* the normalisers' eps *)
Variable theta0 : vec I.
Variable dom : vec I -> Prop.                (* where the relation holds *)

Hypothesis G_joint : forall t c theta e, 0 < c -> 0 < e -> dom theta ->
  G t (vscale c theta) (e * c ^ 2) = vscale (/ c) (G t theta e).
Hypothesis eps_pos : 0 < eps.
Hypothesis eta_pos : forall t, 0 < eta t.

Let cs := GeneralSchedule.c eta lam gamma.
Let ks := GeneralSchedule.k eta lam gamma.

(* eps_t = eps m_t^2 with m_t = 1 / c_t. *)
Definition eps_at (t : nat) : R := eps * (/ cs t) ^ 2.

(* The weight-decay run at fixed eps. *)
Definition wd_run_eps (t : nat) : vec I * vec I :=
  run (fun t theta => G t theta eps) eta lam gamma (theta0, vzero) t.

(* The converted run: no weight decay, LR eta_t / (c_t c_{t+1}), eps m_t^2. *)
Definition exp_run_eps (t : nat) : vec I * vec I :=
  run (fun t theta => G t theta (eps_at t)) (exp_lr eta lam gamma) (fun _ => 0) gamma
      (theta0, vzero) t.

Lemma normaliser_eps_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < cs s) ->
  (forall s, (s < t)%nat -> dom (fst (wd_run_eps s))) ->
  fst (exp_run_eps t) = vscale (/ cs t) (fst (wd_run_eps t)) /\
  snd (exp_run_eps t) = vadd (vscale (cs t) (snd (wd_run_eps t)))
                              (vscale (ks t) (fst (wd_run_eps t))).
Proof.
  induction t as [| t IH]; intros Hpos Hdom.
  - unfold exp_run_eps, wd_run_eps; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + unfold cs; simpl. rewrite Rinv_1. ring.
    + unfold ks; simpl. ring.
  - assert (Hct : 0 < cs t) by (apply Hpos; lia).
    assert (Hct1 : 0 < cs (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv];
      [intros s Hs; apply Hpos; lia | intros s Hs; apply Hdom; lia |].
    assert (Hg : G t (vscale (/ cs t) (fst (wd_run_eps t))) (eps_at t)
                 = vscale (cs t) (G t (fst (wd_run_eps t)) eps)).
    { unfold eps_at.
      rewrite (G_joint t (/ cs t) (fst (wd_run_eps t)) eps).
      - rewrite Rinv_inv. reflexivity.
      - apply Rinv_0_lt_compat. exact Hct.
      - exact eps_pos.
      - apply Hdom. lia. }
    pose proof (step_invariant_two I (fun theta => G t theta eps)
                  (fun theta => G t theta (eps_at t))
                  (cs t) (cs (S t)) (ks t) (eta t) (lam t) gamma
                  (fst (wd_run_eps t)) (snd (wd_run_eps t))
                  (fst (exp_run_eps t)) (snd (exp_run_eps t))
                  Hg Hct ltac:(lra) Heta (c_recurrence eta lam gamma eta_pos t)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_run_eps, wd_run_eps in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem (c): with eps_t = eps m_t^2 in the converted run,
   theta~_t = theta_t / c_t for every t with c_0, ..., c_t > 0. *)
Theorem normaliser_eps_training (t : nat) :
  (forall s, (s <= t)%nat -> 0 < cs s) ->
  (forall s, (s < t)%nat -> dom (fst (wd_run_eps s))) ->
  fst (exp_run_eps t) = vscale (/ cs t) (fst (wd_run_eps t)).
Proof.
  intros Hpos Hdom. exact (proj1 (normaliser_eps_invariant t Hpos Hdom)).
Qed.

End Training.

Arguments wd_run_eps {I} G eta lam gamma eps theta0 t.
Arguments exp_run_eps {I} G eta lam gamma eps theta0 t.

(* The relation assumed everywhere: no condition on the run. *)
Corollary normaliser_eps_training_everywhere {I : Type}
    (G : nat -> vec I -> R -> vec I) (eta lam : nat -> R) (gamma eps : R) (theta0 : vec I)
    (t : nat) :
  (forall t c theta e, 0 < c -> 0 < e ->
     G t (vscale c theta) (e * c ^ 2) = vscale (/ c) (G t theta e)) ->
  0 < eps -> (forall t, 0 < eta t) ->
  (forall s, (s <= t)%nat -> 0 < c eta lam gamma s) ->
  fst (exp_run_eps G eta lam gamma eps theta0 t)
  = vscale (/ c eta lam gamma t) (fst (wd_run_eps G eta lam gamma eps theta0 t)).
Proof.
  intros HG He Heta Hpos.
  apply (normaliser_eps_training I G eta lam gamma eps theta0 (fun _ => True));
    auto.
Qed.

(* Per-step losses L_t(theta; eps), jointly invariant, with gradients G_t. *)
Theorem normaliser_eps_training_grad {I : Type}
    (I_dec : forall i j : I, {i = j} + {i <> j}) (idx : list I)
    (idx_complete : forall i, In i idx) (idx_nodup : NoDup idx)
    (Ls : nat -> vec I -> R -> R) (G : nat -> vec I -> R -> vec I)
    (eta lam : nat -> R) (gamma eps : R) (theta0 : vec I) (t : nat) :
  (forall t, jointly_invariant (Ls t)) ->
  (forall t e, 0 < e ->
     has_gradient I idx (fun theta => Ls t theta e) (fun theta => G t theta e)) ->
  0 < eps -> (forall t, 0 < eta t) ->
  (forall s, (s <= t)%nat -> 0 < c eta lam gamma s) ->
  (forall s, (s < t)%nat -> nonzero I (fst (wd_run_eps G eta lam gamma eps theta0 s))) ->
  fst (exp_run_eps G eta lam gamma eps theta0 t)
  = vscale (/ c eta lam gamma t) (fst (wd_run_eps G eta lam gamma eps theta0 t)).
Proof.
  intros Hjoint Hgrad He Heta Hpos Hnz.
  apply (normaliser_eps_training I G eta lam gamma eps theta0 (nonzero I)); auto.
  intros u c0 theta e Hc He' Hx.
  apply (grad_joint_homogeneous I I_dec idx idx_complete idx_nodup (Ls u) (G u));
    auto.
Qed.

(* The normalised networks of (a), input batch h_0(t) at step t. *)
Theorem normalised_network_training {I F : Type}
    (I_dec : forall i j : I, {i = j} + {i <> j}) (idx : list I)
    (idx_complete : forall i, In i idx) (idx_nodup : NoDup idx)
    (pre : nat -> vec I -> F -> nat -> nat -> R) (size : nat -> nat -> nat)
    (post : nat -> F -> (nat -> nat -> R) -> F) (loss : F -> R) (depth : nat)
    (batch : nat -> F) (G : nat -> vec I -> R -> vec I)
    (eta lam : nat -> R) (gamma eps : R) (theta0 : vec I) (t : nat) :
  pre_homogeneous pre ->
  (forall t e, 0 < e ->
     has_gradient I idx (fun theta => net_loss pre size post loss depth (batch t) theta e)
                        (fun theta => G t theta e)) ->
  0 < eps -> (forall t, 0 < eta t) ->
  (forall s, (s <= t)%nat -> 0 < c eta lam gamma s) ->
  (forall s, (s < t)%nat -> nonzero I (fst (wd_run_eps G eta lam gamma eps theta0 s))) ->
  fst (exp_run_eps G eta lam gamma eps theta0 t)
  = vscale (/ c eta lam gamma t) (fst (wd_run_eps G eta lam gamma eps theta0 t)).
Proof.
  intros Hpre Hgrad He Heta Hpos Hnz.
  apply (normaliser_eps_training_grad I_dec idx idx_complete idx_nodup
           (fun t => net_loss pre size post loss depth (batch t)) G); auto.
  intro u. apply normalised_network_joint_invariant. exact Hpre.
Qed.
