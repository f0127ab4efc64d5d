(* KappaForm.v -- the scale recurrence of the general theorem (Li & Arora,
   ICLR 2020, main theorem with momentum, any learning-rate and weight-decay
   schedule) written without 1/eta, so that steps with learning rate 0 (linear
   warm-up from 0, cosine decay to eta_min = 0) are covered; the momentum is a
   schedule gamma_t and the initial buffer v_0 is arbitrary (copied as is).

   Weight-decay run:  v_{t+1} = gamma_t v_t + G_t(theta_t) + lambda_t theta_t,
                      theta_{t+1} = theta_t - eta_t v_{t+1},   from (theta_0, v_0).
   Converted run:     the same with lambda = 0 and LR eta~_t = eta_t / (c_t c_{t+1}),
                      from the same (theta_0, v_0), where
                      c_0 = 1, kappa_0 = 0,
                      kappa_{t+1} = gamma_t kappa_t - lambda_t c_t,
                      c_{t+1}     = c_t + eta_t kappa_{t+1}.
   No hypothesis on eta, lambda, gamma: any reals, eta_t = 0 included.

   (1) [kappa_form_equivalence]: theta~_t = theta_t / c_t whenever c_0, ..., c_t > 0.
   (2) [kappa_form_buffer]: the stock buffer from the converted state,
       v_t = (v~_t - kappa_t theta_t) / c_t = v~_t / c_t - kappa_t theta~_t.
   (3) [kappa_form_paper_recurrence]: where eta_{t-1} > 0 the same scales obey
       kappa_t = (c_t - c_{t-1}) / eta_{t-1} and the paper's recurrence
       c_{t+1} = (1 + gamma_t r_t - eta_t lambda_t) c_t - gamma_t r_t c_{t-1},
       r_t = eta_t / eta_{t-1}; [kappa_form_agrees_with_general_schedule]: with
       gamma constant and every eta_t > 0 they are GeneralSchedule.v's c and k.
   Refuted on a concrete instance with eta_0 = 0 (one coordinate,
   G_t(x) = 1/x, eta = (0, 1/4, ...), lambda = 1, gamma = 1/2, theta_0 = 1,
   v_0 = 0): [buffer_without_kappa_refuted] (v~_t = c_t v_t, the kappa term
   dropped, fails at t = 1) and [paper_recurrence_refuted_at_zero_lr]
   (GeneralSchedule.v's run, whose r_1 = eta_1 / 0 is 0 in Coq, fails at t = 2:
   its hypothesis eta_t > 0 cannot be dropped; the kappa form gives c_2 = 5/8
   there, not 3/4, [kappa_form_zero_lr_instance]).
   Negative control: negative/WrongKappaBuffer.v.
   Corresponding SymPy module: proofs/kappa_form.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
From ExpLR Require GeneralSchedule Refutation.
Open Scope R_scope.

Section ScheduledMomentum.

Variable I : Type.

(* A run of PyTorch SGD whose momentum is a schedule [mom t]. *)
Fixpoint srun (G : nat -> vec I -> vec I) (lr wd mom : nat -> R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => sgd_step (G t') (lr t') (wd t') (mom t') (srun G lr wd mom s0 t')
  end.

(* With a constant momentum it is Momentum.v's run. *)
Lemma srun_constant (G : nat -> vec I -> vec I) (lr wd : nat -> R) (g : R)
    (s0 : vec I * vec I) (t : nat) :
  srun G lr wd (fun _ => g) s0 t = run G lr wd g s0 t.
Proof.
  induction t as [| t IH]; simpl; [reflexivity | now rewrite IH].
Qed.

(* The one-step invariant, with no division by the learning rate: from
   theta~ = theta / c0 and v~ = c0 v + k0 theta, one step of each run gives
   theta~' = theta' / c1 and v~' = c1 v' + k1 theta' with
   k1 = mom k0 - wd c0 and c1 = c0 + lr k1 (lr = 0 allowed). *)
Lemma kappa_step_invariant
    (g : vec I -> vec I) (c0 k0 lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hc0 : 0 < c0) (Hc1 : c0 + lr * (mom * k0 - wd * c0) <> 0)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale k0 theta)) :
  let k1 := mom * k0 - wd * c0 in
  let c1 := c0 + lr * k1 in
  let s' := sgd_step g lr wd mom (theta, v) in
  let s_e' := sgd_step g (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale c1 (snd s')) (vscale k1 (fst s')).
Proof.
  intros k1 c1 s' s_e'.
  subst s' s_e' theta_e v_e k1 c1.
  unfold sgd_step; simpl.
  rewrite Hg.
  assert (Hc0' : c0 <> 0) by lra.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; split; assumption.
  - field; assumption.
Qed.

End ScheduledMomentum.

Arguments srun {I} G lr wd mom s0 t.
Arguments kappa_step_invariant {I} g c0 k0 lr wd mom theta v theta_e v_e.

Section KappaForm.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam gamma : nat -> R.          (* LR, WD and momentum schedules *)
Variables theta0 v0 : vec I.                 (* common initial state, any buffer *)

Hypothesis G_homogeneous : homogeneous_m1 G.

(* (c_t, kappa_t): c_0 = 1, kappa_0 = 0, kappa_{t+1} = gamma_t kappa_t - lambda_t c_t,
   c_{t+1} = c_t + eta_t kappa_{t+1}. *)
Fixpoint ck (t : nat) : R * R :=
  match t with
  | O => (1, 0)
  | S t' =>
      let ct := fst (ck t') in
      let kt := snd (ck t') in
      let k1 := gamma t' * kt - lam t' * ct in
      (ct + eta t' * k1, k1)
  end.

Definition kc (t : nat) : R := fst (ck t).
Definition kappa (t : nat) : R := snd (ck t).

Lemma kc_0 : kc 0 = 1.
Proof. reflexivity. Qed.

Lemma kappa_0 : kappa 0 = 0.
Proof. reflexivity. Qed.

Lemma kappa_S (t : nat) : kappa (S t) = gamma t * kappa t - lam t * kc t.
Proof. reflexivity. Qed.

Lemma kc_S (t : nat) : kc (S t) = kc t + eta t * kappa (S t).
Proof. reflexivity. Qed.

Definition kexp_lr (t : nat) : R := eta t / (kc t * kc (S t)).

Definition kwd_run (t : nat) : vec I * vec I := srun G eta lam gamma (theta0, v0) t.

Definition kexp_run (t : nat) : vec I * vec I :=
  srun G kexp_lr (fun _ => 0) gamma (theta0, v0) t.

Lemma kappa_form_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc s) ->
  fst (kexp_run t) = vscale (/ kc t) (fst (kwd_run t)) /\
  snd (kexp_run t) = vadd (vscale (kc t) (snd (kwd_run t))) (vscale (kappa t) (fst (kwd_run t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - (* t = 0: same state, c_0 = 1, kappa_0 = 0, the buffer is copied *)
    unfold kexp_run, kwd_run; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd; simpl.
    + unfold kc; simpl. rewrite Rinv_1. ring.
    + unfold kc, kappa; simpl. ring.
  - assert (Hct : 0 < kc t) by (apply Hpos; lia).
    assert (Hct1 : 0 < kc (S t)) by (apply Hpos; lia).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    assert (Hc1 : kc t + eta t * (gamma t * kappa t - lam t * kc t) <> 0).
    { rewrite <- kappa_S, <- kc_S. lra. }
    pose proof (kappa_step_invariant (G t) (kc t) (kappa t) (eta t) (lam t) (gamma t)
                  (fst (kwd_run t)) (snd (kwd_run t))
                  (fst (kexp_run t)) (snd (kexp_run t))
                  (homogeneous_at_inv G t (kc t) _ G_homogeneous Hct) Hct Hc1
                  IHtheta IHv) as [Htheta Hv].
    rewrite <- kappa_S, <- kc_S in Htheta, Hv.
    unfold kexp_run, kwd_run in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold kexp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* (1) Main theorem: the converted run follows theta_t / c_t, learning rates
   0 allowed at any step. *)
Theorem kappa_form_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc s) ->
  fst (kexp_run t) = vscale (/ kc t) (fst (kwd_run t)).
Proof.
  intro Hpos. exact (proj1 (kappa_form_invariant t Hpos)).
Qed.

(* (2) The stock buffer recovered from the converted state. *)
Theorem kappa_form_buffer (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc s) ->
  snd (kwd_run t)
  = vscale (/ kc t) (vsub (snd (kexp_run t)) (vscale (kappa t) (fst (kwd_run t)))) /\
  snd (kwd_run t)
  = vsub (vscale (/ kc t) (snd (kexp_run t))) (vscale (kappa t) (fst (kexp_run t))).
Proof.
  intro Hpos.
  assert (Hc : kc t <> 0) by (pose proof (Hpos t (le_n t)); lra).
  destruct (kappa_form_invariant t Hpos) as [Htheta Hv].
  rewrite Htheta, Hv.
  split; apply functional_extensionality; intro i; unfold vscale, vadd, vsub;
    field; exact Hc.
Qed.

(* (3) Where eta_{t-1} > 0: kappa_t = (c_t - c_{t-1}) / eta_{t-1}, and the
   paper's three-term recurrence with r_t = eta_t / eta_{t-1}; c_1 = 1 - eta_0 lambda_0. *)
Theorem kappa_form_paper_recurrence :
  kc 1 = 1 - eta 0 * lam 0 /\
  (forall t, 0 < eta t -> kappa (S t) = (kc (S t) - kc t) / eta t) /\
  (forall t, 0 < eta t ->
     let r := eta (S t) / eta t in
     kc (S (S t))
     = (1 + gamma (S t) * r - eta (S t) * lam (S t)) * kc (S t) - gamma (S t) * r * kc t).
Proof.
  split; [| split].
  - rewrite kc_S, kappa_S, kc_0, kappa_0. ring.
  - intros t Heta. rewrite (kc_S t). field. lra.
  - intros t Heta r. unfold r.
    rewrite (kc_S (S t)), (kappa_S (S t)).
    replace (kappa (S t)) with ((kc (S t) - kc t) / eta t)
      by (rewrite (kc_S t); field; lra).
    field. lra.
Qed.

End KappaForm.

Arguments kwd_run {I} G eta lam gamma theta0 v0 t.
Arguments kexp_run {I} G eta lam gamma theta0 v0 t.

(* (3), second part: with a constant momentum and every eta_t > 0, the scales
   and buffer coefficients are those of GeneralSchedule.v. *)
Theorem kappa_form_agrees_with_general_schedule (eta lam : nat -> R) (g : R) :
  (forall t, 0 < eta t) ->
  forall t,
    kc eta lam (fun _ => g) t = GeneralSchedule.c eta lam g t /\
    kappa eta lam (fun _ => g) t = GeneralSchedule.k eta lam g t.
Proof.
  intros Heta.
  destruct (kappa_form_paper_recurrence eta lam (fun _ => g)) as [H1 [Hk Hrec]].
  assert (Hc : forall t, kc eta lam (fun _ => g) t = GeneralSchedule.c eta lam g t /\
                         kc eta lam (fun _ => g) (S t) = GeneralSchedule.c eta lam g (S t)).
  { induction t as [| t [IH0 IH1]].
    - split; [reflexivity |]. rewrite H1. reflexivity.
    - split; [exact IH1 |].
      rewrite (Hrec t (Heta t)).
      change (GeneralSchedule.c eta lam g (S (S t))) with
        ((1 + g * (eta (S t) / eta t) - eta (S t) * lam (S t)) * GeneralSchedule.c eta lam g (S t)
         - g * (eta (S t) / eta t) * GeneralSchedule.c eta lam g t).
      rewrite IH0, IH1. reflexivity. }
  intro t. split; [exact (proj1 (Hc t)) |].
  destruct t as [| t]; [reflexivity |].
  rewrite (Hk t (Heta t)).
  unfold GeneralSchedule.k. rewrite (proj1 (Hc t)), (proj2 (Hc t)). reflexivity.
Qed.

(* ---- A warm-up from learning rate 0: a concrete instance. ---- *)

Definition zl_eta (t : nat) : R := match t with O => 0 | S _ => / 4 end.
Definition zl_lam (t : nat) : R := 1.
Definition zl_gamma (t : nat) : R := / 2.
Definition zl_theta0 : vec unit := fun _ => 1.

Lemma zl_kc_1 : kc zl_eta zl_lam zl_gamma 1 = 1.
Proof. rewrite kc_S, kappa_S, kc_0, kappa_0. unfold zl_eta. ring. Qed.

Lemma zl_kc_2 : kc zl_eta zl_lam zl_gamma 2 = 5 / 8.
Proof.
  rewrite kc_S, kappa_S, zl_kc_1, kappa_S, kappa_0, kc_0.
  unfold zl_eta, zl_lam, zl_gamma. field.
Qed.

(* The kappa form covers the instance: theta~_t = theta_t / c_t, with c_2 = 5/8. *)
Lemma kappa_form_zero_lr_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc zl_eta zl_lam zl_gamma s) ->
  fst (kexp_run Refutation.inv_grad zl_eta zl_lam zl_gamma zl_theta0 vzero t)
  = vscale (/ kc zl_eta zl_lam zl_gamma t)
      (fst (kwd_run Refutation.inv_grad zl_eta zl_lam zl_gamma zl_theta0 vzero t)).
Proof.
  apply kappa_form_equivalence. exact Refutation.inv_grad_homogeneous.
Qed.

(* Refuted: the buffer relation without the kappa term, v~_t = c_t v_t, fails at
   t = 1 although eta_0 = 0 (v~_1 = 1, c_1 v_1 = 2). *)
Theorem buffer_without_kappa_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < kc zl_eta zl_lam zl_gamma s) ->
       snd (kexp_run Refutation.inv_grad zl_eta zl_lam zl_gamma zl_theta0 vzero t)
       = vscale (kc zl_eta zl_lam zl_gamma t)
           (snd (kwd_run Refutation.inv_grad zl_eta zl_lam zl_gamma zl_theta0 vzero t))).
Proof.
  intro Hclaim.
  assert (Hpos : forall s, (s <= 1)%nat -> 0 < kc zl_eta zl_lam zl_gamma s).
  { intros s Hs. destruct s as [| [| s]].
    - rewrite kc_0. lra.
    - rewrite zl_kc_1. lra.
    - exfalso. lia. }
  pose proof (f_equal (fun x => x tt) (Hclaim 1%nat Hpos)) as H1.
  rewrite zl_kc_1 in H1.
  unfold kexp_run, kwd_run in H1; simpl in H1.
  unfold Refutation.inv_grad, vscale, vzero, zl_theta0, zl_lam, zl_gamma in H1.
  rewrite Rinv_1 in H1.
  lra.
Qed.

(* Refuted: GeneralSchedule.v's run (the paper's recurrence, where
   r_1 = eta_1 / eta_0 = eta_1 / 0 is 0 in Coq) on the same instance, with its
   hypothesis eta_t > 0 dropped: c_2 = 3/4 and theta~_2 = 1/2, but
   theta_2 / c_2 = 1/3. *)
Theorem paper_recurrence_refuted_at_zero_lr :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < GeneralSchedule.c zl_eta zl_lam (/ 2) s) ->
       fst (GeneralSchedule.exp_run Refutation.inv_grad zl_eta zl_lam (/ 2) zl_theta0 t)
       = vscale (/ GeneralSchedule.c zl_eta zl_lam (/ 2) t)
           (fst (GeneralSchedule.wd_run Refutation.inv_grad zl_eta zl_lam (/ 2) zl_theta0 t))).
Proof.
  intro Hclaim.
  assert (Hc1 : GeneralSchedule.c zl_eta zl_lam (/ 2) 1 = 1).
  { simpl. unfold zl_eta. ring. }
  assert (Hc2 : GeneralSchedule.c zl_eta zl_lam (/ 2) 2 = 3 / 4).
  { change (GeneralSchedule.c zl_eta zl_lam (/ 2) 2) with
      ((1 + / 2 * (zl_eta 1 / zl_eta 0) - zl_eta 1 * zl_lam 1)
       * GeneralSchedule.c zl_eta zl_lam (/ 2) 1
       - / 2 * (zl_eta 1 / zl_eta 0) * GeneralSchedule.c zl_eta zl_lam (/ 2) 0).
    rewrite Hc1. unfold zl_eta, zl_lam, Rdiv. simpl. rewrite Rinv_0. field. }
  assert (Hpos : forall s, (s <= 2)%nat -> 0 < GeneralSchedule.c zl_eta zl_lam (/ 2) s).
  { intros s Hs. destruct s as [| [| [| s]]].
    - simpl. lra.
    - rewrite Hc1. lra.
    - rewrite Hc2. lra.
    - exfalso. lia. }
  pose proof (f_equal (fun x => x tt) (Hclaim 2%nat Hpos)) as H2.
  rewrite Hc2 in H2.
  unfold GeneralSchedule.exp_run, GeneralSchedule.wd_run in H2; simpl in H2.
  unfold GeneralSchedule.exp_lr in H2. rewrite Hc1, Hc2 in H2.
  change (GeneralSchedule.c zl_eta zl_lam (/ 2) 0) with 1 in H2.
  unfold Refutation.inv_grad, vscale, vzero, zl_theta0, zl_eta, zl_lam in H2.
  field_simplify in H2.
  lra.
Qed.
