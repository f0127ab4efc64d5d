(* KappaForm.v -- the scale recurrence of the general theorem (Li & Arora,
   ICLR 2020, main theorem with momentum, any learning-rate and weight-decay
   schedule) written without 1/eta, so that steps with learning rate 0 (linear
   warm-up from 0, cosine decay to eta_min = 0) are covered; the momentum is a
   schedule gamma_t and the initial buffer v_0 is arbitrary (copied as is).

   Weight-decay run:  v_{t+1} = gamma_t v_t + G_t(theta_t) + lambda_t theta_t,
                      theta_{t+1} = theta_t - eta_t v_{t+1},   from (theta_0, v_0)
                      (Momentum.v's [srun]).
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
       every eta_t > 0 they are GeneralSchedule.v's c and k (momentum schedule;
       [kappa_form_agrees_with_general_schedule_const]: constant momentum).
   Refuted on concrete instances inside the hypothesis class: Witness.v's
   scale-invariant loss L(x) = x1^2 / (x1^2 + x2^2) (gradient map wG,
   g(1, 1) = (1/2, -1/2)), theta_0 = (1, 1), v_0 = 0, lambda = 1, gamma = 1/2:
   - with eta = (0, 1/4, 1/4, ...): [buffer_without_kappa_refuted]
     (v~_t = c_t v_t, the kappa term dropped, fails at t = 1:
     v~_1 = (1/2, -1/2), c_1 v_1 = (3/2, 1/2)) and
     [paper_recurrence_refuted_at_zero_lr] (GeneralSchedule.v's run, whose
     r_1 = eta_1 / 0 is 0 in Coq, fails at t = 2: its hypothesis eta_t > 0
     cannot be dropped; it has c_2 = 3/4, theta~_2 = (3/4, 5/4) but
     theta_2 / c_2 = (7/12, 13/12); the kappa form gives c_2 = 5/8 there,
     [kappa_form_zero_lr_instance]);
   - with eta_t = 1/2: [wrong_kappa_buffer_refuted], the negative control's
     wrong claim (the invariant with the buffer only rescaled,
     v~_t = c_t v_t) fails at t = 1 (v~_1 = (1/2, -1/2),
     c_1 v_1 = (3/4, 1/4)); [right_kappa_buffer_instance]: the invariant on
     the same instance.

   Main theorems: [kappa_form_equivalence], [kappa_step_invariant],
   [kappa_form_buffer], [kappa_form_paper_recurrence],
   [kappa_form_agrees_with_general_schedule], [buffer_without_kappa_refuted],
   [paper_recurrence_refuted_at_zero_lr], [wrong_kappa_buffer_refuted].
   Negative control: [wrong_kappa_buffer_refuted] proves the invariant with
   the buffer only rescaled, v~_t = c_t v_t (the term kappa_t theta_t
   dropped), false on Witness.v's loss.
   Corresponding SymPy module: proofs/kappa_form.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
From ExpLR Require Import Witness.
From ExpLR Require GeneralSchedule.
Open Scope R_scope.

Section ScheduledMomentum.

Variable I : Type.

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

(* (3), second part: with every eta_t > 0, the scales and buffer coefficients
   are those of GeneralSchedule.v (momentum schedule gamma_t). *)
Theorem kappa_form_agrees_with_general_schedule (eta lam gamma : nat -> R) :
  (forall t, 0 < eta t) ->
  forall t,
    kc eta lam gamma t = GeneralSchedule.cs eta lam gamma t /\
    kappa eta lam gamma t = GeneralSchedule.ks eta lam gamma t.
Proof.
  intros Heta.
  destruct (kappa_form_paper_recurrence eta lam gamma) as [H1 [Hk Hrec]].
  assert (Hc : forall t, kc eta lam gamma t = GeneralSchedule.cs eta lam gamma t /\
                         kc eta lam gamma (S t) = GeneralSchedule.cs eta lam gamma (S t)).
  { induction t as [| t [IH0 IH1]].
    - split; [reflexivity |]. rewrite H1. reflexivity.
    - split; [exact IH1 |].
      rewrite (Hrec t (Heta t)).
      change (GeneralSchedule.cs eta lam gamma (S (S t))) with
        ((1 + gamma (S t) * (eta (S t) / eta t) - eta (S t) * lam (S t))
           * GeneralSchedule.cs eta lam gamma (S t)
         - gamma (S t) * (eta (S t) / eta t) * GeneralSchedule.cs eta lam gamma t).
      rewrite IH0, IH1. reflexivity. }
  intro t. split; [exact (proj1 (Hc t)) |].
  destruct t as [| t]; [reflexivity |].
  rewrite (Hk t (Heta t)).
  unfold GeneralSchedule.ks. rewrite (proj1 (Hc t)), (proj2 (Hc t)). reflexivity.
Qed.

(* The same with a constant momentum: GeneralSchedule.v's c and k. *)
Theorem kappa_form_agrees_with_general_schedule_const (eta lam : nat -> R) (g : R) :
  (forall t, 0 < eta t) ->
  forall t,
    kc eta lam (fun _ => g) t = GeneralSchedule.c eta lam g t /\
    kappa eta lam (fun _ => g) t = GeneralSchedule.k eta lam g t.
Proof.
  intros Heta t. exact (kappa_form_agrees_with_general_schedule eta lam (fun _ => g) Heta t).
Qed.

(* ---- Concrete instances on Witness.v's scale-invariant loss. ---- *)

(* One step from theta = (1, 1), v = 0 with momentum 1/2 and LR 0: theta stays
   at (1, 1) and v_1 = g(1, 1) + wd (1, 1). *)
Lemma zl_step0 (lr wd : R) :
  lr = 0 ->
  sgd_step (wG 0) lr wd (/ 2) (wone, vzero)
  = (wone, fun i : bool => if i then / 2 + wd else - / 2 + wd).
Proof.
  intros ->. unfold sgd_step, wG. cbn [fst snd]. rewrite wgrad_one.
  apply injective_projections; cbn [fst snd]; apply functional_extensionality;
    intros []; cbn; unfold wone, vzero; ring.
Qed.

(* ---- A warm-up from learning rate 0. ---- *)

Definition zl_eta (t : nat) : R := match t with O => 0 | S _ => / 4 end.
Definition zl_lam (t : nat) : R := 1.
Definition zl_gamma (t : nat) : R := / 2.

Lemma zl_kc_1 : kc zl_eta zl_lam zl_gamma 1 = 1.
Proof. rewrite kc_S, kappa_S, kc_0, kappa_0. unfold zl_eta. ring. Qed.

Lemma zl_kc_2 : kc zl_eta zl_lam zl_gamma 2 = 5 / 8.
Proof.
  rewrite kc_S, kappa_S, zl_kc_1, kappa_S, kappa_0, kc_0.
  unfold zl_eta, zl_lam, zl_gamma. field.
Qed.

(* The weight-decay run after one step (LR 0): theta_1 = (1, 1), v_1 = (3/2, 1/2). *)
Lemma zl_wd_1 :
  srun wG zl_eta zl_lam zl_gamma (wone, vzero) 1
  = (wone, fun i : bool => if i then / 2 + 1 else - / 2 + 1).
Proof. apply zl_step0. reflexivity. Qed.

(* The kappa form covers the instance: theta~_t = theta_t / c_t, with c_2 = 5/8. *)
Lemma kappa_form_zero_lr_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc zl_eta zl_lam zl_gamma s) ->
  fst (kexp_run wG zl_eta zl_lam zl_gamma wone vzero t)
  = vscale (/ kc zl_eta zl_lam zl_gamma t)
      (fst (kwd_run wG zl_eta zl_lam zl_gamma wone vzero t)).
Proof.
  apply kappa_form_equivalence. exact witness_homogeneous.
Qed.

(* Refuted: the buffer relation without the kappa term, v~_t = c_t v_t, fails at
   t = 1 although eta_0 = 0 (v~_1 = (1/2, -1/2), c_1 v_1 = (3/2, 1/2)). *)
Theorem buffer_without_kappa_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < kc zl_eta zl_lam zl_gamma s) ->
       snd (kexp_run wG zl_eta zl_lam zl_gamma wone vzero t)
       = vscale (kc zl_eta zl_lam zl_gamma t)
           (snd (kwd_run wG zl_eta zl_lam zl_gamma wone vzero t))).
Proof.
  intro Hclaim.
  assert (Hpos : forall s, (s <= 1)%nat -> 0 < kc zl_eta zl_lam zl_gamma s).
  { intros s Hs. destruct s as [| [| s]].
    - rewrite kc_0. lra.
    - rewrite zl_kc_1. lra.
    - exfalso. lia. }
  pose proof (f_equal (fun x => x true) (Hclaim 1%nat Hpos)) as H1.
  rewrite zl_kc_1 in H1.
  unfold kexp_run, kwd_run in H1. rewrite zl_wd_1 in H1.
  change (srun wG (kexp_lr zl_eta zl_lam zl_gamma) (fun _ => 0) zl_gamma (wone, vzero) 1)
    with (sgd_step (wG 0) (kexp_lr zl_eta zl_lam zl_gamma 0) 0 (/ 2) (wone, vzero)) in H1.
  rewrite zl_step0 in H1 by (unfold kexp_lr, zl_eta; unfold Rdiv; ring).
  cbn in H1. unfold vscale in H1. lra.
Qed.

(* Refuted: GeneralSchedule.v's run (the paper's recurrence, where
   r_1 = eta_1 / eta_0 = eta_1 / 0 is 0 in Coq) on the same instance, with its
   hypothesis eta_t > 0 dropped: c_2 = 3/4 and theta~_2 = (3/4, 5/4), but
   theta_2 / c_2 = (7/12, 13/12). *)
Theorem paper_recurrence_refuted_at_zero_lr :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < GeneralSchedule.cs zl_eta zl_lam zl_gamma s) ->
       fst (GeneralSchedule.exp_srun wG zl_eta zl_lam zl_gamma wone t)
       = vscale (/ GeneralSchedule.cs zl_eta zl_lam zl_gamma t)
           (fst (GeneralSchedule.wd_srun wG zl_eta zl_lam zl_gamma wone t))).
Proof.
  intro Hclaim.
  assert (Hc1 : GeneralSchedule.cs zl_eta zl_lam zl_gamma 1 = 1).
  { simpl. unfold zl_eta. ring. }
  assert (Hc2 : GeneralSchedule.cs zl_eta zl_lam zl_gamma 2 = 3 / 4).
  { change (GeneralSchedule.cs zl_eta zl_lam zl_gamma 2) with
      ((1 + zl_gamma 1 * (zl_eta 1 / zl_eta 0) - zl_eta 1 * zl_lam 1)
       * GeneralSchedule.cs zl_eta zl_lam zl_gamma 1
       - zl_gamma 1 * (zl_eta 1 / zl_eta 0) * GeneralSchedule.cs zl_eta zl_lam zl_gamma 0).
    rewrite Hc1. unfold zl_eta, zl_lam, zl_gamma, Rdiv. simpl. rewrite Rinv_0. field. }
  assert (Hpos : forall s, (s <= 2)%nat -> 0 < GeneralSchedule.cs zl_eta zl_lam zl_gamma s).
  { intros s Hs. destruct s as [| [| [| s]]].
    - simpl. lra.
    - rewrite Hc1. lra.
    - rewrite Hc2. lra.
    - exfalso. lia. }
  pose proof (f_equal (fun x => x true) (Hclaim 2%nat Hpos)) as H2.
  rewrite Hc2 in H2.
  unfold GeneralSchedule.exp_srun, GeneralSchedule.wd_srun in H2.
  change (srun wG zl_eta zl_lam zl_gamma (wone, vzero) 2)
    with (sgd_step (wG 1) (zl_eta 1) (zl_lam 1) (zl_gamma 1)
            (srun wG zl_eta zl_lam zl_gamma (wone, vzero) 1)) in H2.
  change (srun wG (GeneralSchedule.exp_slr zl_eta zl_lam zl_gamma) (fun _ => 0) zl_gamma
            (wone, vzero) 2)
    with (sgd_step (wG 1) (GeneralSchedule.exp_slr zl_eta zl_lam zl_gamma 1) 0 (zl_gamma 1)
            (sgd_step (wG 0) (GeneralSchedule.exp_slr zl_eta zl_lam zl_gamma 0) 0 (/ 2)
               (wone, vzero))) in H2.
  rewrite zl_wd_1 in H2.
  rewrite zl_step0 in H2
    by (unfold GeneralSchedule.exp_slr, zl_eta; unfold Rdiv; ring).
  unfold GeneralSchedule.exp_slr in H2. rewrite Hc1, Hc2 in H2.
  unfold sgd_step, wG in H2. cbn [fst snd] in H2. rewrite wgrad_one in H2.
  cbn in H2. unfold vscale, wone, zl_eta, zl_lam, zl_gamma in H2.
  field_simplify in H2. lra.
Qed.

(* ---- The negative control's wrong claim, with positive learning rates. ---- *)

Definition kb_eta (t : nat) : R := / 2.

Lemma kb_kc_1 : kc kb_eta zl_lam zl_gamma 1 = / 2.
Proof. rewrite kc_S, kappa_S, kc_0, kappa_0. unfold kb_eta, zl_lam. field. Qed.

Lemma kb_kc_pos (s : nat) : (s <= 1)%nat -> 0 < kc kb_eta zl_lam zl_gamma s.
Proof.
  intro Hs. destruct s as [| [| s]].
  - rewrite kc_0. lra.
  - rewrite kb_kc_1. lra.
  - exfalso. lia.
Qed.

(* Refuted: the invariant with the buffer only rescaled (the negative
   control, v~_t = c_t v_t + 0 theta_t) fails at t = 1 with eta_t = 1/2,
   lambda_t = 1, gamma_t = 1/2, theta_0 = (1, 1), v_0 = 0. *)
Theorem wrong_kappa_buffer_refuted :
  ~ (forall t : nat,
       (forall s, (s <= t)%nat -> 0 < kc kb_eta zl_lam zl_gamma s) ->
       fst (kexp_run wG kb_eta zl_lam zl_gamma wone vzero t)
       = vscale (/ kc kb_eta zl_lam zl_gamma t) (fst (kwd_run wG kb_eta zl_lam zl_gamma wone vzero t)) /\
       snd (kexp_run wG kb_eta zl_lam zl_gamma wone vzero t)
       = vadd (vscale (kc kb_eta zl_lam zl_gamma t) (snd (kwd_run wG kb_eta zl_lam zl_gamma wone vzero t)))
              (vscale 0 (fst (kwd_run wG kb_eta zl_lam zl_gamma wone vzero t)))).
Proof.
  intro Hclaim.
  pose proof (f_equal (fun x => x true) (proj2 (Hclaim 1%nat kb_kc_pos))) as H1.
  rewrite kb_kc_1 in H1.
  unfold kexp_run, kwd_run in H1. cbn [srun sgd_step fst snd] in H1.
  unfold wG in H1. rewrite wgrad_one in H1.
  cbn in H1. unfold vadd, vscale, vzero, wone, zl_lam, zl_gamma in H1.
  field_simplify in H1. lra.
Qed.

(* The same instance satisfies KappaForm.v's invariant (with kappa_t). *)
Lemma right_kappa_buffer_instance (t : nat) :
  (forall s, (s <= t)%nat -> 0 < kc kb_eta zl_lam zl_gamma s) ->
  fst (kexp_run wG kb_eta zl_lam zl_gamma wone vzero t)
  = vscale (/ kc kb_eta zl_lam zl_gamma t) (fst (kwd_run wG kb_eta zl_lam zl_gamma wone vzero t)) /\
  snd (kexp_run wG kb_eta zl_lam zl_gamma wone vzero t)
  = vadd (vscale (kc kb_eta zl_lam zl_gamma t) (snd (kwd_run wG kb_eta zl_lam zl_gamma wone vzero t)))
         (vscale (kappa kb_eta zl_lam zl_gamma t) (fst (kwd_run wG kb_eta zl_lam zl_gamma wone vzero t))).
Proof.
  apply kappa_form_invariant. exact witness_homogeneous.
Qed.
