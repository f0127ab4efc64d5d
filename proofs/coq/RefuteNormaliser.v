(* RefuteNormaliser.v -- the negative control's wrong claim, the normaliser
   result with eps scaled by m instead of m^2 (N_{eps m}(m x) = N_eps(x)), is
   false, not merely unproven ([wrong_normaliser_eps_refuted]), and so is the
   training theorem with eps left fixed in the converted run (the normaliser
   results behind Li & Arora, ICLR 2020, with eps > 0; the right statements
   are Normaliser.v's [normaliser_eps] and NormaliserRun.v's
   [normaliser_eps_training]).

   1. The normaliser.  [normaliser_eps_unique]: for x_j <> mean(x), m > 0 and
   positive variances-plus-eps, N_{eps'}(m x)_j = N_eps(x)_j forces
   eps' = eps m^2.  On the instance n = 2, x = (0, 2), m = 2, eps = 1, j = 1
   (mean 1, variance 1, N_1(x)_1 = 1 / sqrt 2, while N_{eps'}(2 x)_1 =
   2 / sqrt(4 + eps')):
     [normaliser_eps_power_refuted]  "N_{eps m^p}(m x) = N_eps(x)" is false
       for every p <> 2;
     [wrong_normaliser_eps_refuted]  p = 1, the negative control's wrong
       claim (eps scaled by m);
     [unscaled_eps_refuted]          eps not scaled at all;
     [right_normaliser_eps_instance] the same instance with eps m^2: both
       sides are 1 / sqrt 2.

   2. Training.  A one-parameter network (index type unit): the group
   x(theta) = (0, theta) (linear in theta) is normalised and the loss is its
   second output,
       L(theta; eps) = N_eps(x(theta))_1 = (theta / 2) / sqrt(theta^2 / 4 + eps),
   with gradient G(theta; eps) = eps / (2 q sqrt q), q = theta^2 / 4 + eps
   ([nloss_has_gradient]: ScaleInvariance.v's [has_gradient], for every
   theta, with the derivative rules of WitnessGradient.v); L is jointly
   invariant ([nloss_joint_invariant]) and G jointly homogeneous everywhere
   ([ngrad_joint_homogeneous]).  Run: eps = 1,
   theta_0 = 0, eta_t = 3, lambda_t = 7/48, gamma = 0, so c_1 = 9/16,
   c_2 = 81/256, theta_1 = -3/2, theta~_1 = -8/3.
     [fixed_eps_training_refuted]  the converted run with eps left at 1
       misses theta_2 / c_2 (its step-1 gradient is 27/250 instead of
       c_1 G(theta_1; 1) = 18/125);
     [right_eps_training_instance] the same instance with eps_t = eps / c_t^2
       satisfies theta~_t = theta_t / c_t (NormaliserRun.v), in particular
       at t = 2.

   Main theorems: [wrong_normaliser_eps_refuted], [normaliser_eps_power_refuted],
   [unscaled_eps_refuted], [normaliser_eps_unique], [fixed_eps_training_refuted].
   Corresponding SymPy module: proofs/normaliser_eps.py. *)

From Coq Require Import Reals Lra Lia List FunctionalExtensionality.
Set Warnings "-ambiguous-paths".
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Vec Momentum GeneralSchedule ScaleInvariance Normaliser NormaliserRun
  WitnessGradient.
Import ListNotations.
Open Scope R_scope.

(* ------------------------------------------------------------------------ *)
(* 1. The normaliser.                                                        *)

Lemma sqrt_pos_ne (u : R) : 0 < u -> sqrt u <> 0.
Proof. intro Hu. pose proof (sqrt_lt_R0 u Hu). lra. Qed.

(* m^2 eps is the only eps' that keeps the output (x_j off the mean). *)
Theorem normaliser_eps_unique (eps eps' m : R) (n : nat) (x : nat -> R) (j : nat) :
  0 < m -> 0 < var n x + eps -> 0 < var n (fun i => m * x i) + eps' ->
  x j <> mean n x ->
  normalise eps' n (fun i => m * x i) j = normalise eps n x j -> eps' = eps * m ^ 2.
Proof.
  intros Hm Hv Hv' Hj H.
  unfold normalise in H. rewrite mean_scale, var_scale in H. rewrite var_scale in Hv'.
  set (A := sqrt (m ^ 2 * var n x + eps')) in H.
  set (B := sqrt (var n x + eps)) in H.
  assert (HA : 0 < A) by (apply sqrt_lt_R0; exact Hv').
  assert (HB : 0 < B) by (apply sqrt_lt_R0; exact Hv).
  assert (Hd : x j - mean n x <> 0) by lra.
  (* m d / A = d / B  gives  A = m B *)
  assert (E : A = m * B).
  { apply (Rmult_eq_reg_l ((x j - mean n x) / (A * B))).
    - replace ((x j - mean n x) / (A * B) * A) with ((x j - mean n x) / B) by (field; lra).
      replace ((x j - mean n x) / (A * B) * (m * B))
        with ((m * x j - m * mean n x) / A) by (field; lra).
      symmetry. exact H.
    - unfold Rdiv. apply Rmult_integral_contrapositive_currified; [exact Hd |].
      apply Rinv_neq_0_compat. nra. }
  assert (E2 : A * A = m ^ 2 * (B * B)) by (rewrite E; ring).
  unfold A, B in E2. rewrite !sqrt_sqrt in E2 by lra.
  lra.
Qed.

(* The instance: n = 2, x = (0, 2). *)
Definition x_ex (i : nat) : R := match i with O => 0 | S _ => 2 end.

Lemma mean_x_ex : mean 2 x_ex = 1.
Proof. unfold mean, x_ex. simpl. field. Qed.

Lemma var_x_ex : var 2 x_ex = 1.
Proof. unfold var. rewrite mean_x_ex. unfold x_ex. simpl. field. Qed.

Lemma normalise_x_ex (e : R) : normalise e 2 x_ex 1 = 1 / sqrt (1 + e).
Proof.
  unfold normalise. rewrite mean_x_ex, var_x_ex. unfold x_ex. f_equal. ring.
Qed.

Lemma normalise_2x_ex (e : R) :
  normalise e 2 (fun i => 2 * x_ex i) 1 = 2 / sqrt (4 + e).
Proof.
  unfold normalise. rewrite mean_scale, var_scale, mean_x_ex, var_x_ex. unfold x_ex.
  f_equal; [ring | f_equal; ring].
Qed.

(* The wrong claim with eps m^p fails for every p <> 2. *)
Theorem normaliser_eps_power_refuted (p : nat) :
  p <> 2%nat ->
  ~ (forall (eps m : R) (n : nat) (x : nat -> R) (j : nat),
       0 < m -> 0 < var n x + eps ->
       normalise (eps * m ^ p) n (fun i => m * x i) j = normalise eps n x j).
Proof.
  intros Hp Hclaim.
  assert (Hpow : 0 < 2 ^ p) by (apply pow_lt; lra).
  assert (Hv : 0 < var 2 x_ex + 1) by (rewrite var_x_ex; lra).
  assert (Hv' : 0 < var 2 (fun i => 2 * x_ex i) + 1 * 2 ^ p).
  { rewrite var_scale, var_x_ex. lra. }
  assert (Hj : x_ex 1 <> mean 2 x_ex) by (rewrite mean_x_ex; unfold x_ex; lra).
  pose proof (normaliser_eps_unique 1 (1 * 2 ^ p) 2 2 x_ex 1 ltac:(lra) Hv Hv' Hj
                (Hclaim 1 2 2%nat x_ex 1%nat ltac:(lra) Hv)) as E.
  (* 2^p = 4 forces p = 2 *)
  destruct p as [| [| [| p]]].
  - simpl in E. lra.
  - simpl in E. lra.
  - apply Hp. reflexivity.
  - assert (H1 : 1 <= 2 ^ p) by (apply pow_R1_Rle; lra).
    simpl in E. nra.
Qed.

(* Main theorem: the normaliser result with eps m (not eps m^2) is false. *)
Theorem wrong_normaliser_eps_refuted :
  ~ (forall (eps m : R) (n : nat) (x : nat -> R) (j : nat),
       0 < m -> 0 < var n x + eps ->
       normalise (eps * m ^ 1) n (fun i => m * x i) j = normalise eps n x j).
Proof. apply normaliser_eps_power_refuted. discriminate. Qed.

(* eps left unscaled: N_eps(m x) = N_eps(x) is false. *)
Theorem unscaled_eps_refuted :
  ~ (forall (eps m : R) (n : nat) (x : nat -> R) (j : nat),
       0 < m -> 0 < var n x + eps ->
       normalise eps n (fun i => m * x i) j = normalise eps n x j).
Proof.
  intro Hclaim. apply (normaliser_eps_power_refuted 0); [discriminate |].
  intros eps m n x j Hm Hv. simpl. rewrite Rmult_1_r. apply Hclaim; assumption.
Qed.

(* The numbers: with eps unscaled and with eps m, the output moves. *)
Lemma wrong_values_differ :
  normalise 1 2 (fun i => 2 * x_ex i) 1 <> normalise 1 2 x_ex 1 /\
  normalise (1 * 2 ^ 1) 2 (fun i => 2 * x_ex i) 1 <> normalise 1 2 x_ex 1.
Proof.
  split; intro H.
  - rewrite normalise_2x_ex, normalise_x_ex in H.
    (* 2 / sqrt 5 = 1 / sqrt 2 would give 4 / 5 = 1 / 2 *)
    assert (H2 : (2 / sqrt (4 + 1)) ^ 2 = (1 / sqrt (1 + 1)) ^ 2) by (rewrite H; reflexivity).
    unfold Rdiv in H2. rewrite !Rpow_mult_distr, !pow_inv, !pow2_sqrt in H2 by lra.
    field_simplify in H2. lra.
  - rewrite normalise_2x_ex, normalise_x_ex in H.
    assert (H2 : (2 / sqrt (4 + 1 * 2 ^ 1)) ^ 2 = (1 / sqrt (1 + 1)) ^ 2)
      by (rewrite H; reflexivity).
    unfold Rdiv in H2. rewrite !Rpow_mult_distr, !pow_inv, !pow2_sqrt in H2 by lra.
    field_simplify in H2. lra.
Qed.

(* The right statement on the same instance: both sides are 1 / sqrt 2. *)
Theorem right_normaliser_eps_instance :
  normalise (1 * 2 ^ 2) 2 (fun i => 2 * x_ex i) 1 = normalise 1 2 x_ex 1 /\
  normalise 1 2 x_ex 1 = 1 / sqrt 2.
Proof.
  split.
  - apply normaliser_eps; [lra | rewrite var_x_ex; lra].
  - rewrite normalise_x_ex. replace (1 + 1) with 2 by ring. reflexivity.
Qed.

(* ------------------------------------------------------------------------ *)
(* 2. Training with eps left fixed.                                          *)

(* The group (0, theta): linear in theta. *)
Definition xin (theta : vec unit) (i : nat) : R := match i with O => 0 | S _ => theta tt end.

Definition nloss (theta : vec unit) (e : R) : R := normalise e 2 (xin theta) 1.

Definition nq (theta : vec unit) (e : R) : R := / 4 * (theta tt * theta tt) + e.

Definition ngrad (theta : vec unit) (e : R) : vec unit :=
  fun _ => e / (2 * (nq theta e * sqrt (nq theta e))).

Lemma nq_pos (theta : vec unit) (e : R) : 0 < e -> 0 < nq theta e.
Proof. intro He. unfold nq. pose proof (Rle_0_sqr (theta tt)). unfold Rsqr in *. lra. Qed.

Lemma nloss_closed (theta : vec unit) (e : R) :
  nloss theta e = / 2 * theta tt / sqrt (nq theta e).
Proof.
  unfold nloss, normalise, nq.
  assert (Hm : mean 2 (xin theta) = / 2 * theta tt) by (unfold mean, xin; simpl; field).
  assert (Hv : var 2 (xin theta) = / 4 * (theta tt * theta tt)).
  { unfold var. rewrite Hm. unfold xin. simpl. field. }
  rewrite Hm, Hv. unfold xin. f_equal. field.
Qed.

Lemma xin_scale (c : R) (theta : vec unit) : xin (vscale c theta) = fun i => c * xin theta i.
Proof. apply functional_extensionality; intros [| i]; unfold xin, vscale; ring. Qed.

(* L(c theta; c^2 eps) = L(theta; eps). *)
Theorem nloss_joint_invariant : jointly_invariant nloss.
Proof.
  intros c theta e Hc He. unfold nloss. rewrite xin_scale.
  apply normaliser_eps_pos; assumption.
Qed.

(* G(c theta; c^2 eps) = G(theta; eps) / c, for every theta. *)
Theorem ngrad_joint_homogeneous (c e : R) (theta : vec unit) :
  0 < c -> 0 < e -> ngrad (vscale c theta) (e * c ^ 2) = vscale (/ c) (ngrad theta e).
Proof.
  intros Hc He. apply functional_extensionality; intro i.
  unfold ngrad, vscale.
  assert (E : nq (fun i => c * theta i) (e * c ^ 2) = c ^ 2 * nq theta e)
    by (unfold nq; ring).
  rewrite E, sqrt_scale_sq by exact Hc.
  pose proof (nq_pos theta e He). pose proof (sqrt_lt_R0 _ (nq_pos theta e He)).
  field. repeat split; lra.
Qed.

(* G(. ; eps) is the gradient of L(. ; eps) (at every theta, eps > 0). *)
Theorem nloss_has_gradient (e : R) :
  0 < e -> has_gradient unit [tt] (fun theta => nloss theta e) (fun theta => ngrad theta e).
Proof.
  intros He x _ h.
  unfold dot, dotl. cbn [fold_right].
  set (a := x tt). set (p := h tt).
  pose proof (derive_line a p 0) as Hu.
  pose proof (is_derive_scal _ 0 (/ 2) _ Hu) as HA.
  pose proof (is_derive_mult (K := R_AbsRing) _ _ 0 _ _ Hu Hu Rmult_comm) as Huu.
  pose proof (is_derive_scal _ 0 (/ 4) _ Huu) as Hq.
  pose proof (is_derive_plus (K := R_AbsRing) (V := R_NormedModule) _ (fun _ => e) 0 _ _
                Hq (is_derive_const e 0)) as HQ.
  cbv beta in HQ.
  assert (HQ0 : 0 < plus (/ 4 * mult (a + 0 * p) (a + 0 * p)) e).
  { change (0 < / 4 * ((a + 0 * p) * (a + 0 * p)) + e).
    pose proof (Rle_0_sqr (a + 0 * p)). unfold Rsqr in *. lra. }
  pose proof (is_derive_sqrt _ 0 _ HQ HQ0) as HB.
  pose proof (is_derive_div _ _ 0 _ _ HA HB ltac:(apply sqrt_pos_ne; exact HQ0)) as Hd.
  cbv beta in Hd.
  match type of Hd with
  | is_derive ?f _ ?l => apply (derive_congr f _ 0 l); [| | exact Hd]
  end.
  - intro s. rewrite nloss_closed. unfold nq, vadd, vscale. fold a p. reflexivity.
  - unfold ngrad. fold a.
    change (plus (/ 4 * mult (a + 0 * p) (a + 0 * p)) e)
      with (/ 4 * ((a + 0 * p) * (a + 0 * p)) + e).
    change (plus (/ 4 * plus (mult p (a + 0 * p)) (mult (a + 0 * p) p)) zero)
      with (/ 4 * (p * (a + 0 * p) + (a + 0 * p) * p) + 0).
    rewrite !Rmult_0_l, !Rplus_0_r.
    unfold nq. fold a.
    assert (Hq0 : 0 < / 4 * (a * a) + e) by (pose proof (Rle_0_sqr a); unfold Rsqr in *; lra).
    pose proof (sqrt_sqrt _ (Rlt_le _ _ Hq0)) as Hrr.
    pose proof (sqrt_lt_R0 _ Hq0) as Hr0.
    remember (sqrt (/ 4 * (a * a) + e)) as r eqn:Hr.
    assert (Ee : e = r * r - / 4 * (a * a)) by lra.
    rewrite Ee. field. lra.
Qed.

(* The run instance. *)
Definition Gn (t : nat) (theta : vec unit) (e : R) : vec unit := ngrad theta e.
Definition eta_n (t : nat) : R := 3.
Definition lam_n (t : nat) : R := 7 / 48.
Definition theta0_n : vec unit := fun _ => 0.

Lemma cn_1 : c eta_n lam_n 0 1 = 9 / 16.
Proof. simpl. unfold eta_n, lam_n. field. Qed.

Lemma cn_2 : c eta_n lam_n 0 2 = 81 / 256.
Proof. simpl. unfold eta_n, lam_n. field. Qed.

Lemma cn_pos (s : nat) : (s <= 2)%nat -> 0 < c eta_n lam_n 0 s.
Proof.
  intro Hs. destruct s as [| [| [| s]]].
  - simpl. lra.
  - rewrite cn_1. lra.
  - rewrite cn_2. lra.
  - lia.
Qed.

(* G at a point where q(theta; e) = a^2. *)
Lemma ngrad_at (theta : vec unit) (e a : R) :
  0 < a -> nq theta e = a * a -> ngrad theta e = fun _ => e / (2 * (a * a * a)).
Proof.
  intros Ha Hq. unfold ngrad. rewrite Hq, sqrt_square by lra.
  apply functional_extensionality; intro i. reflexivity.
Qed.

(* The weight-decay run at eps = 1. *)
Lemma wd_n_1 :
  wd_run_eps Gn eta_n lam_n 0 1 theta0_n 1 = ((fun _ => -3 / 2), (fun _ => / 2)).
Proof.
  unfold wd_run_eps. cbn [run]. unfold sgd_step. cbn [fst snd]. unfold Gn.
  rewrite (ngrad_at theta0_n 1 1) by (unfold nq, theta0_n; lra).
  f_equal; apply functional_extensionality; intro i;
    unfold theta0_n, vzero, eta_n, lam_n; field.
Qed.

Lemma wd_n_2 :
  fst (wd_run_eps Gn eta_n lam_n 0 1 theta0_n 2)
  = fun _ => -3 / 2 - 3 * (32 / 125 + 7 / 48 * (-3 / 2)).
Proof.
  change (wd_run_eps Gn eta_n lam_n 0 1 theta0_n 2)
    with (sgd_step (fun theta => Gn 1 theta 1) (eta_n 1) (lam_n 1) 0
                   (wd_run_eps Gn eta_n lam_n 0 1 theta0_n 1)).
  rewrite wd_n_1. unfold sgd_step. cbn [fst snd]. unfold Gn.
  rewrite (ngrad_at (fun _ => -3 / 2) 1 (5 / 4)) by (unfold nq; lra).
  apply functional_extensionality; intro i. unfold eta_n, lam_n. field.
Qed.

(* The converted run with eps left at 1 (the wrong claim's run). *)
Definition fixed_eps_run (t : nat) : vec unit * vec unit :=
  run (fun t theta => Gn t theta 1) (exp_lr eta_n lam_n 0) (fun _ => 0) 0
      (theta0_n, vzero) t.

Lemma fixed_1 : fixed_eps_run 1 = ((fun _ => -8 / 3), (fun _ => / 2)).
Proof.
  unfold fixed_eps_run. cbn [run]. unfold sgd_step. cbn [fst snd]. unfold Gn.
  rewrite (ngrad_at theta0_n 1 1) by (unfold nq, theta0_n; lra).
  unfold exp_lr. rewrite cn_1.
  f_equal; apply functional_extensionality; intro i;
    unfold theta0_n, vzero, eta_n; simpl; field.
Qed.

Lemma fixed_2 :
  fst (fixed_eps_run 2) = fun _ => -8 / 3 - 3 / (9 / 16 * (81 / 256)) * (27 / 250).
Proof.
  change (fixed_eps_run 2)
    with (sgd_step (fun theta => Gn 1 theta 1) (exp_lr eta_n lam_n 0 1) 0 0 (fixed_eps_run 1)).
  rewrite fixed_1. unfold sgd_step. cbn [fst snd]. unfold Gn.
  rewrite (ngrad_at (fun _ => -8 / 3) 1 (5 / 3)) by (unfold nq; lra).
  unfold exp_lr. rewrite cn_1, cn_2.
  apply functional_extensionality; intro i. unfold eta_n. field.
Qed.

(* Main theorem: with eps fixed in the converted run, theta~_t = theta_t / c_t
   fails (at t = 2, where c_0, c_1, c_2 > 0). *)
Theorem fixed_eps_training_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < c eta_n lam_n 0 s) ->
       fst (run (fun t theta => Gn t theta 1) (exp_lr eta_n lam_n 0) (fun _ => 0) 0
                (theta0_n, vzero) t)
       = vscale (/ c eta_n lam_n 0 t) (fst (wd_run_eps Gn eta_n lam_n 0 1 theta0_n t))).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun v => v tt) (Hclaim 2%nat cn_pos)) as H.
  fold (fixed_eps_run 2) in H. cbv beta in H.
  rewrite fixed_2, wd_n_2, cn_2 in H. unfold vscale in H.
  field_simplify in H. lra.
Qed.

(* The same instance with eps_t = eps / c_t^2 satisfies the theorem. *)
Theorem right_eps_training_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c eta_n lam_n 0 s) ->
  fst (exp_run_eps Gn eta_n lam_n 0 1 theta0_n t)
  = vscale (/ c eta_n lam_n 0 t) (fst (wd_run_eps Gn eta_n lam_n 0 1 theta0_n t)).
Proof.
  apply normaliser_eps_training_everywhere.
  - intros u c0 theta e Hc He. apply ngrad_joint_homogeneous; assumption.
  - lra.
  - intro u. unfold eta_n. lra.
Qed.

Corollary right_eps_training_at_2 :
  fst (exp_run_eps Gn eta_n lam_n 0 1 theta0_n 2)
  = vscale (/ c eta_n lam_n 0 2) (fst (wd_run_eps Gn eta_n lam_n 0 1 theta0_n 2)).
Proof. apply right_eps_training_instance. exact cn_pos. Qed.
