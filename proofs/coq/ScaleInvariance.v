(* ScaleInvariance.v -- the lemma on scale-invariant losses, with derivatives
   (Li & Arora, ICLR 2020, the gradient properties the main theorem rests on),
   and the general theorem stated directly for a scale-invariant
   differentiable loss.

   Setting.  Parameters are vectors x : I -> R over a finite index type I
   (a duplicate-free list [idx] enumerates I; equality on I is decidable),
   <x, y> = sum_{i in idx} x_i y_i.  A loss L : vec I -> R has gradient
   g : vec I -> vec I on the open cone x <> 0 (some coordinate nonzero) when
   every directional derivative exists and is given by the gradient:
       d/ds L(x + s h) at s = 0  equals  <g(x), h>      for all h
   (Coquelicot's [is_derive]; a Frechet-differentiable L satisfies this).
   Scale invariance: L(c x) = L(x) for every c > 0 and every x.

   Claims (for x <> 0, c > 0):
     [grad_homogeneous]   g(c x) = g(x) / c      (degree -1 homogeneity)
     [grad_orthogonal]    <g(x), x> = 0          (Euler's identity)
   and, when g has Hessian-vector products Hv(x, h) (the derivative of
   s |-> g(x + s h) at 0, coordinatewise) on the cone:
     [hessian_homogeneous] Hv(c x, h) = Hv(x, h) / c^2   (degree -2)
     [hessian_euler]       Hv(x, x) = -g(x).

   Then, for per-step losses L_t with gradients G_t, the general theorem of
   GeneralSchedule.v (PyTorch momentum SGD, any LR / WD / momentum schedule)
   holds with the homogeneity hypothesis replaced by scale invariance of L_t,
   as long as the weight-decay run stays off the origin (where L_t has no
   gradient):
     [scale_invariant_general_schedule]   theta~_t = theta_t / c_t
   (momentum schedule gamma_t; [scale_invariant_general_schedule_const]: the
   same with a constant momentum, Momentum.v's [run]).
   [grad_homogeneous_m1] gives the hypothesis [homogeneous_m1] of every other
   file when the gradient map is also given the value 0 at the origin.

   Main theorems: [grad_homogeneous], [grad_orthogonal], [hessian_homogeneous],
   [hessian_euler], [scale_invariant_general_schedule].
   Negative control: RefuteHomogeneity.v's [wrong_homogeneity_refuted]
   proves the gradient lemma with the wrong degree, g(c x) = c g(x)
   (degree +1 instead of g(x) / c), false on Witness.v's loss.
   Corresponding SymPy module: proofs/scale_invariance.py. *)

From Coq Require Import Reals Lra Lia List FunctionalExtensionality.
Set Warnings "-ambiguous-paths".
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Vec Momentum GeneralSchedule.
Import ListNotations.
Open Scope R_scope.

Section Gradient.

Variable I : Type.
Hypothesis I_dec : forall i j : I, {i = j} + {i <> j}.
Variable idx : list I.
Hypothesis idx_complete : forall i, In i idx.
Hypothesis idx_nodup : NoDup idx.

Definition dotl (l : list I) (x y : vec I) : R :=
  fold_right (fun i acc => x i * y i + acc) 0 l.

Definition dot (x y : vec I) : R := dotl idx x y.

Definition basis (j : I) : vec I := fun i => if I_dec i j then 1 else 0.

Definition nonzero (x : vec I) : Prop := exists i, x i <> 0.

Definition scale_invariant (L : vec I -> R) : Prop :=
  forall (c : R) (x : vec I), 0 < c -> L (vscale c x) = L x.

Definition has_gradient (L : vec I -> R) (g : vec I -> vec I) : Prop :=
  forall x, nonzero x ->
    forall h, is_derive (fun s : R => L (vadd x (vscale s h))) 0 (dot (g x) h).

Lemma dotl_basis_out (l : list I) (x : vec I) (j : I) :
  ~ In j l -> dotl l x (basis j) = 0.
Proof.
  induction l as [| a l IH]; intro Hout; simpl; [reflexivity |].
  unfold basis at 1. destruct (I_dec a j) as [-> | _].
  - exfalso. apply Hout. left. reflexivity.
  - rewrite IH; [ring |]. intro Hin. apply Hout. right. exact Hin.
Qed.

Lemma dotl_basis (l : list I) (x : vec I) (j : I) :
  NoDup l -> In j l -> dotl l x (basis j) = x j.
Proof.
  induction l as [| a l IH]; intros Hnd Hin; [destruct Hin |].
  inversion Hnd as [| a' l' Hnotin Hnd']; subst.
  simpl. unfold basis at 1. destruct (I_dec a j) as [-> | Hne].
  - rewrite dotl_basis_out by exact Hnotin. ring.
  - destruct Hin as [Heq | Hin]; [contradiction |].
    rewrite IH by assumption. ring.
Qed.

Lemma dot_basis (x : vec I) (j : I) : dot x (basis j) = x j.
Proof. apply dotl_basis; auto. Qed.

Lemma nonzero_scale (c : R) (x : vec I) : 0 < c -> nonzero x -> nonzero (vscale c x).
Proof.
  intros Hc [i Hi]. exists i. unfold vscale.
  apply Rmult_integral_contrapositive_currified; lra.
Qed.

Lemma derive_eq (f : R -> R) (x l1 l2 : R) : is_derive f x l1 -> is_derive f x l2 -> l1 = l2.
Proof.
  intros H1 H2. rewrite <- (is_derive_unique f x l1 H1). apply is_derive_unique. exact H2.
Qed.

Section OneLoss.

Variable L : vec I -> R.
Variable g : vec I -> vec I.
Hypothesis L_scale_invariant : scale_invariant L.
Hypothesis L_gradient : has_gradient L g.

(* Directional derivatives are homogeneous of degree -1. *)
Lemma directional_homogeneous (c : R) (x h : vec I) :
  0 < c -> nonzero x -> dot (g (vscale c x)) h = / c * dot (g x) h.
Proof.
  intros Hc Hx.
  pose proof (L_gradient (vscale c x) (nonzero_scale c x Hc Hx) h) as Hcx.
  pose proof (L_gradient x Hx h) as H1.
  (* s |-> L(x + (s / c) h), differentiated by the chain rule *)
  assert (Hin : is_derive (fun s : R => s / c) 0 (/ c)).
  { apply (is_derive_ext (K := R_AbsRing) (V := R_NormedModule) (fun s => / c * s)).
    - intro s. cbv beta. unfold Rdiv. apply Rmult_comm.
    - pose proof (is_derive_scal (fun s : R => s) 0 (/ c) 1 (is_derive_id (K := R_AbsRing) 0))
        as Hd.
      rewrite Rmult_1_r in Hd. exact Hd. }
  assert (H0 : 0 / c = 0) by (unfold Rdiv; ring).
  rewrite <- H0 in H1.
  pose proof (is_derive_comp (fun s : R => L (vadd x (vscale s h))) (fun s => s / c) 0
                _ _ H1 Hin) as Hcomp.
  apply (derive_eq (fun s : R => L (vadd (vscale c x) (vscale s h))) 0).
  - exact Hcx.
  - apply is_derive_ext with (fun s => L (vadd x (vscale (s / c) h))).
    + intro s.
      rewrite <- (L_scale_invariant c (vadd x (vscale (s / c) h)) Hc).
      f_equal. apply functional_extensionality; intro i.
      unfold vscale, vadd. field. lra.
    + exact Hcomp.
Qed.

(* Main theorem: the gradient is homogeneous of degree -1 on the cone. *)
Theorem grad_homogeneous (c : R) (x : vec I) :
  0 < c -> nonzero x -> g (vscale c x) = vscale (/ c) (g x).
Proof.
  intros Hc Hx. apply functional_extensionality; intro i.
  unfold vscale at 2.
  rewrite <- (dot_basis (g (vscale c x)) i), <- (dot_basis (g x) i).
  apply directional_homogeneous; assumption.
Qed.

(* Main theorem: Euler's identity <g(x), x> = 0. *)
Theorem grad_orthogonal (x : vec I) : nonzero x -> dot (g x) x = 0.
Proof.
  intro Hx.
  apply (derive_eq (fun s : R => L (vadd x (vscale s x))) 0).
  - apply L_gradient. exact Hx.
  - apply is_derive_ext_loc with (fun _ => L x).
    + (* for |s| < 1, L(x + s x) = L((1 + s) x) = L(x) *)
      exists (mkposreal 1 Rlt_0_1). intros s Hs.
      change (Rabs (s - 0) < 1) in Hs. rewrite Rminus_0_r in Hs.
      apply Rabs_def2 in Hs.
      rewrite <- (L_scale_invariant (1 + s) x) by lra.
      f_equal. apply functional_extensionality; intro i.
      unfold vscale, vadd. ring.
    + apply (is_derive_const (K := R_AbsRing) (V := R_NormedModule)).
Qed.

(* Hessian-vector products: Hv x h is the derivative of s |-> g(x + s h) at
   s = 0, coordinate by coordinate. *)
Definition has_hessian_vec (Hv : vec I -> vec I -> vec I) : Prop :=
  forall x, nonzero x ->
    forall h i, is_derive (fun s : R => g (vadd x (vscale s h)) i) 0 (Hv x h i).

Lemma nonzero_near (x h : vec I) :
  nonzero x -> locally 0 (fun s : R => nonzero (vadd x (vscale s h))).
Proof.
  intros [i Hi].
  pose proof (Rabs_pos_lt _ Hi) as Hx. pose proof (Rabs_pos (h i)) as Hh.
  assert (Hd : 0 < Rabs (x i) / (Rabs (h i) + 1)) by (apply Rdiv_lt_0_compat; lra).
  exists (mkposreal _ Hd). intros s Hs. exists i. unfold vadd, vscale.
  change (Rabs (s - 0) < Rabs (x i) / (Rabs (h i) + 1)) in Hs.
  rewrite Rminus_0_r in Hs.
  assert (Hs' : Rabs s * (Rabs (h i) + 1) < Rabs (x i)).
  { apply (Rmult_lt_compat_r (Rabs (h i) + 1)) in Hs; [| lra].
    unfold Rdiv in Hs. rewrite Rmult_assoc, Rinv_l in Hs by lra. lra. }
  pose proof (Rabs_pos s) as Hs0.
  intro Hz. assert (E : x i = - (s * h i)) by lra.
  rewrite E, Rabs_Ropp, Rabs_mult in Hs'. nra.
Qed.

Section Hessian.

Variable Hv : vec I -> vec I -> vec I.
Hypothesis g_hessian : has_hessian_vec Hv.

(* Main theorem: the Hessian is homogeneous of degree -2 on the cone. *)
Theorem hessian_homogeneous (c : R) (x h : vec I) :
  0 < c -> nonzero x -> Hv (vscale c x) h = vscale (/ (c * c)) (Hv x h).
Proof.
  intros Hc Hx. apply functional_extensionality; intro i. unfold vscale at 2.
  pose proof (g_hessian (vscale c x) (nonzero_scale c x Hc Hx) h i) as Hcx.
  pose proof (g_hessian x Hx h i) as H1.
  assert (Hin : is_derive (fun s : R => s / c) 0 (/ c)).
  { apply (is_derive_ext (K := R_AbsRing) (V := R_NormedModule) (fun s => / c * s)).
    - intro s. cbv beta. unfold Rdiv. apply Rmult_comm.
    - pose proof (is_derive_scal (fun s : R => s) 0 (/ c) 1 (is_derive_id (K := R_AbsRing) 0))
        as Hd.
      rewrite Rmult_1_r in Hd. exact Hd. }
  assert (H0 : 0 / c = 0) by (unfold Rdiv; ring).
  rewrite <- H0 in H1.
  pose proof (is_derive_comp (fun s : R => g (vadd x (vscale s h)) i) (fun s => s / c) 0
                _ _ H1 Hin) as Hcomp.
  pose proof (is_derive_scal _ 0 (/ c) _ Hcomp) as Hscal.
  apply (derive_eq (fun s : R => g (vadd (vscale c x) (vscale s h)) i) 0).
  - exact Hcx.
  - replace (/ (c * c) * Hv x h i) with (/ c * scal (/ c) (Hv x h i))
      by (change (scal (/ c) (Hv x h i)) with (/ c * Hv x h i); field; lra).
    apply is_derive_ext_loc with (fun s => / c * g (vadd x (vscale (s / c) h)) i);
      [| exact Hscal].
    destruct (nonzero_near x (vscale (/ c) h) Hx) as [eps Heps].
    exists eps. intros s Hs.
    assert (E : vadd x (vscale (s / c) h) = vadd x (vscale s (vscale (/ c) h))).
    { apply functional_extensionality; intro j. unfold vadd, vscale, Rdiv. ring. }
    pose proof (Heps s Hs) as Hnz. rewrite <- E in Hnz.
    assert (E2 : vadd (vscale c x) (vscale s h) = vscale c (vadd x (vscale (s / c) h))).
    { apply functional_extensionality; intro j. unfold vadd, vscale. field. lra. }
    rewrite E2, (grad_homogeneous c _ Hc Hnz). reflexivity.
Qed.

(* Main theorem: Euler's identity for the Hessian, Hess(x) x = -g(x). *)
Theorem hessian_euler (x : vec I) : nonzero x -> Hv x x = vscale (-1) (g x).
Proof.
  intro Hx. apply functional_extensionality; intro i. unfold vscale.
  apply (derive_eq (fun s : R => g (vadd x (vscale s x)) i) 0).
  - apply g_hessian. exact Hx.
  - apply is_derive_ext_loc with (fun s => / (1 + s) * g x i).
    + exists (mkposreal 1 Rlt_0_1). intros s Hs.
      change (Rabs (s - 0) < 1) in Hs. rewrite Rminus_0_r in Hs.
      apply Rabs_def2 in Hs.
      assert (E : vadd x (vscale s x) = vscale (1 + s) x).
      { apply functional_extensionality; intro j. unfold vadd, vscale. ring. }
      rewrite E, (grad_homogeneous (1 + s) x ltac:(lra) Hx). reflexivity.
    + (* d/ds g(x)_i / (1 + s) at 0 = -g(x)_i *)
      assert (Hd : is_derive (fun s : R => 1 + s) 0 1).
      { apply (is_derive_ext (K := R_AbsRing) (V := R_NormedModule) (fun s => 1 + s)).
        - intro s. reflexivity.
        - pose proof (is_derive_plus (K := R_AbsRing) (V := R_NormedModule)
                        (fun _ => 1) (fun s => s) 0 zero one
                        (is_derive_const 1 0) (is_derive_id 0)) as Hp.
          change (is_derive (fun s : R => 1 + s) 0 (0 + 1)) in Hp.
          rewrite Rplus_0_l in Hp. exact Hp. }
      pose proof (is_derive_inv (fun s : R => 1 + s) 0 1 Hd ltac:(lra)) as Hinv.
      pose proof (is_derive_scal_l _ 0 _ (g x i) Hinv) as Hs.
      replace (-1 * g x i) with (- 1 / (1 + 0) ^ 2 * g x i) by (field; lra).
      apply (is_derive_ext (K := R_AbsRing) (V := R_NormedModule)
               (fun s => / (1 + s) * g x i)); [intro s; reflexivity |].
      exact Hs.
Qed.

End Hessian.

End OneLoss.

(* On a finite index type, a vector is either on the cone or the origin
   (decided coordinatewise with the standard library's real comparison). *)
Lemma nonzero_dec_list (x : vec I) (l : list I) :
  {exists i, In i l /\ x i <> 0} + {forall i, In i l -> x i = 0}.
Proof.
  induction l as [| a l IH].
  - right. intros i [].
  - destruct (Req_EM_T (x a) 0) as [Ha | Ha].
    + destruct IH as [Hex | Hall].
      * left. destruct Hex as [i [Hi Hxi]]. exists i. split; [right; exact Hi | exact Hxi].
      * right. intros i [<- | Hi]; [exact Ha | apply Hall; exact Hi].
    + left. exists a. split; [left; reflexivity | exact Ha].
Qed.

Lemma classic_dec_nonzero (x : vec I) : {nonzero x} + {x = vzero}.
Proof.
  destruct (nonzero_dec_list x idx) as [H | H].
  - left. destruct H as [i [_ Hi]]. exists i. exact Hi.
  - right. apply functional_extensionality; intro i. apply H. apply idx_complete.
Qed.

(* With the value 0 at the origin, the gradient map is homogeneous of degree -1
   everywhere: the hypothesis [homogeneous_m1] of NoMomentum.v,
   GeneralSchedule.v, ClosedForm.v and Rescaling.v. *)
Theorem grad_homogeneous_m1 (Ls : nat -> vec I -> R) (G : nat -> vec I -> vec I) :
  (forall t, scale_invariant (Ls t)) -> (forall t, has_gradient (Ls t) (G t)) ->
  (forall t, G t vzero = vzero) -> homogeneous_m1 G.
Proof.
  intros Hsi Hgr H0 t c x Hc.
  destruct (classic_dec_nonzero x) as [Hx | Hx].
  - apply grad_homogeneous with (Ls t); auto.
  - rewrite Hx. replace (vscale c vzero) with (@vzero I).
    + rewrite H0. apply functional_extensionality; intro i. unfold vscale, vzero. ring.
    + apply functional_extensionality; intro i. unfold vscale, vzero. ring.
Qed.

(* The general theorem for a scale-invariant differentiable loss. *)
Section Runs.

Variable Ls : nat -> vec I -> R.             (* per-step loss L_t *)
Variable G : nat -> vec I -> vec I.          (* its gradient G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : nat -> R.                   (* momentum schedule gamma_t *)
Variable theta0 : vec I.

Hypothesis Ls_scale_invariant : forall t, scale_invariant (Ls t).
Hypothesis Ls_gradient : forall t, has_gradient (Ls t) (G t).
Hypothesis eta_pos : forall t, 0 < eta t.

Let c := cs eta lam gamma.
Let k := ks eta lam gamma.
Let wd_run := wd_srun G eta lam gamma theta0.
Let exp_run := exp_srun G eta lam gamma theta0.

Lemma scale_invariant_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  (forall s, (s < t)%nat -> nonzero (fst (wd_run s))) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (exp_run t) = vadd (vscale (c t) (snd (wd_run t))) (vscale (k t) (fst (wd_run t))).
Proof.
  induction t as [| t IH]; intros Hpos Hnz.
  - unfold exp_run, wd_run, exp_srun, wd_srun; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + unfold c; simpl. rewrite Rinv_1. ring.
    + unfold k; simpl. ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    destruct IH as [IHtheta IHv];
      [intros s Hs; apply Hpos; lia | intros s Hs; apply Hnz; lia |].
    assert (Hg : G t (vscale (/ c t) (fst (wd_run t))) = vscale (c t) (G t (fst (wd_run t)))).
    { rewrite (grad_homogeneous (Ls t) (G t) (Ls_scale_invariant t) (Ls_gradient t)).
      - rewrite Rinv_inv. reflexivity.
      - apply Rinv_0_lt_compat. exact Hct.
      - apply Hnz. lia. }
    pose proof (step_invariant_at (G t) (c t) (c (S t)) (k t) (eta t) (lam t) (gamma t)
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (exp_run t)) (snd (exp_run t))
                  Hg Hct ltac:(lra) Heta (cs_recurrence eta lam gamma eta_pos t)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_run, wd_run, exp_srun, wd_srun in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_slr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem: a scale-invariant differentiable loss, PyTorch momentum SGD
   with any LR / WD / momentum schedule from zero buffers: the exponential-LR run is the
   weight-decay run divided by c_t, for every t with c_0, ..., c_t > 0 and
   theta_0, ..., theta_{t-1} off the origin. *)
Theorem scale_invariant_general_schedule (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  (forall s, (s < t)%nat -> nonzero (fst (wd_run s))) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)).
Proof.
  intros Hpos Hnz. exact (proj1 (scale_invariant_invariant t Hpos Hnz)).
Qed.

End Runs.

(* The same with a constant momentum (Momentum.v's [run]). *)
Theorem scale_invariant_general_schedule_const
    (Ls : nat -> vec I -> R) (G : nat -> vec I -> vec I) (eta lam : nat -> R)
    (gamma : R) (theta0 : vec I) :
  (forall t, scale_invariant (Ls t)) -> (forall t, has_gradient (Ls t) (G t)) ->
  (forall t, 0 < eta t) ->
  forall t : nat,
  (forall s, (s <= t)%nat -> 0 < GeneralSchedule.c eta lam gamma s) ->
  (forall s, (s < t)%nat -> nonzero (fst (GeneralSchedule.wd_run G eta lam gamma theta0 s))) ->
  fst (GeneralSchedule.exp_run G eta lam gamma theta0 t)
  = vscale (/ GeneralSchedule.c eta lam gamma t) (fst (GeneralSchedule.wd_run G eta lam gamma theta0 t)).
Proof.
  intros Hsi Hgr Heta t Hpos Hnz.
  rewrite exp_run_srun, wd_run_srun.
  apply (scale_invariant_general_schedule Ls G eta lam (fun _ => gamma) theta0 Hsi Hgr Heta t Hpos).
  intros s Hs. rewrite <- wd_run_srun. exact (Hnz s Hs).
Qed.

End Gradient.
