(* Nesterov.v -- PyTorch SGD with Nesterov momentum and coupled weight decay
   is the same SGD without weight decay when the momentum buffer is
   rewritten once per step; without the rewrite, no schedule of the LR and
   the momentum is exact (a project result extending Li & Arora, ICLR 2020,
   main theorem).

   Convention (torch.optim.SGD, nesterov = True, dampening = 0), with
   d_t = G_t(theta_t) + lambda_t theta_t, v_0 = 0 and a momentum schedule
   gamma_t:
       v_{t+1} = gamma_t v_t + d_t,   theta_{t+1} = theta_t - eta_t (d_t + gamma_t v_{t+1}).
   Scale sequence: c_0 = 1, c_{t+1} = (1 - eta_t lambda_t) c_t; c_{-1} := 1.
   Converted run: no weight decay, the same gamma_t, LR
   eta~_t = eta_t / (c_t c_{t+1}), and before step t the buffer is rewritten
       v~ <- (c_t / c_{t-1}) v~ + (c_t^2 lambda_t / gamma_t) theta~_t.
   Claim: theta~_t = theta_t / c_t and (after step t-1) v~_t = c_{t-1} v_t,
   for every t with c_0, ..., c_t > 0, every gamma_t <> 0.

   Main theorems: [nesterov_equivalence] (momentum schedule;
   [nesterov_equivalence_const]: constant momentum; one-step invariant
   [nesterov_step_invariant], any momentum of that step) and
   [nesterov_no_hyperparameter_map]: without
   the rewrite, no LR schedule, momentum schedule and scale sequence make the
   converted run follow theta_t / c_t, on a concrete instance (see below).
   Negative control: RefuteNesterov.v's [wrong_nesterov_buffer_refuted]
   proves the one-step invariant with the buffer only rescaled, v~ = c v
   (without the term (c lambda / gamma) theta of the rewrite), false on
   Witness.v's loss.
   Corresponding SymPy module: proofs/nesterov.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

Section Nesterov.

Variable I : Type.

(* One step of Nesterov SGD. *)
Definition nest_step (g : vec I -> vec I) (lr wd mom : R) (s : vec I * vec I)
    : vec I * vec I :=
  let d := fun i => g (fst s) i + wd * fst s i in
  let v' := fun i => mom * snd s i + d i in
  (fun i => fst s i - lr * (d i + mom * v' i), v').

Fixpoint nest_run (G : nat -> vec I -> vec I) (lr wd mom : nat -> R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => nest_step (G t') (lr t') (wd t') (mom t') (nest_run G lr wd mom s0 t')
  end.

(* One-step invariant: with the (rewritten) buffer v~ = c0 v + (c0 lambda / gamma) theta
   and theta~ = theta / c0, the step without weight decay and LR
   eta / (c0 c1), c1 = (1 - eta lambda) c0, gives theta~' = theta' / c1 and
   v~' = c0 v'. *)
Lemma nesterov_step_invariant
    (g : vec I -> vec I) (c0 c1 lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0) (Hmom : mom <> 0)
    (Hrec : c1 = (1 - lr * wd) * c0)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale (c0 * wd / mom) theta)) :
  let s' := nest_step g lr wd mom (theta, v) in
  let s_e' := nest_step g (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\ snd s_e' = vscale c0 (snd s').
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold nest_step; simpl.
  rewrite Hg.
  assert (Hc0' : c0 <> 0) by lra.
  subst c1.
  assert (Ha : 1 - lr * wd <> 0) by (intro E; apply Hc1; rewrite E; ring).
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; repeat split; assumption.
  - field; repeat split; assumption.
Qed.

Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : nat -> R.                   (* momentum schedule gamma_t *)
Variable theta0 : vec I.                     (* common initial point *)

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis gamma_nonzero : forall t, gamma t <> 0.

Fixpoint c (t : nat) : R :=
  match t with
  | O => 1
  | S t' => (1 - eta t' * lam t') * c t'
  end.

(* c_{t-1}, with c_{-1} = 1. *)
Definition cprev (t : nat) : R := match t with O => 1 | S t' => c t' end.

Definition wd_run (t : nat) : vec I * vec I :=
  nest_run G eta lam gamma (theta0, vzero) t.

Definition exp_lr (t : nat) : R := eta t / (c t * c (S t)).

(* The buffer rewrite before step t. *)
Definition rewrite_buffer (t : nat) (theta_e v_e : vec I) : vec I :=
  vadd (vscale (c t / cprev t) v_e) (vscale (c t * c t * lam t / gamma t) theta_e).

(* The converted run: rewrite, then one step without weight decay. *)
Fixpoint exp_run (t : nat) : vec I * vec I :=
  match t with
  | O => (theta0, vzero)
  | S t' =>
      let s := exp_run t' in
      nest_step (G t') (exp_lr t') 0 (gamma t') (fst s, rewrite_buffer t' (fst s) (snd s))
  end.

Lemma nesterov_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (exp_run t) = vscale (cprev t) (snd (wd_run t)).
Proof.
  induction t as [| t IH]; intros Hpos.
  - unfold wd_run; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Hcp : 0 < cprev t).
    { destruct t as [| t']; simpl; [lra | apply Hpos; lia]. }
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    assert (Hrw : rewrite_buffer t (fst (exp_run t)) (snd (exp_run t))
                  = vadd (vscale (c t) (snd (wd_run t)))
                         (vscale (c t * lam t / gamma t) (fst (wd_run t)))).
    { unfold rewrite_buffer. rewrite IHtheta, IHv.
      apply functional_extensionality; intro i; unfold vscale, vadd.
      field. split; [exact (gamma_nonzero t) | lra]. }
    pose proof (nesterov_step_invariant (G t) (c t) (c (S t))
                  (eta t) (lam t) (gamma t)
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (exp_run t)) (rewrite_buffer t (fst (exp_run t)) (snd (exp_run t)))
                  (homogeneous_at_inv G t (c t) (fst (wd_run t)) G_homogeneous Hct)
                  Hct ltac:(lra) (gamma_nonzero t) ltac:(simpl; ring)
                  IHtheta Hrw) as [Htheta Hv].
    unfold wd_run in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem: the exact map with one buffer rewrite per step. *)
Theorem nesterov_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)).
Proof.
  intro Hpos. exact (proj1 (nesterov_invariant t Hpos)).
Qed.

End Nesterov.

Arguments nest_step {I} g lr wd mom s.
Arguments nest_run {I} G lr wd mom s0 t.

(* Main theorem, constant momentum gamma <> 0. *)
Theorem nesterov_equivalence_const (I : Type) (G : nat -> vec I -> vec I)
    (eta lam : nat -> R) (gamma : R) (theta0 : vec I) :
  homogeneous_m1 G -> gamma <> 0 ->
  forall t : nat,
  (forall s, (s <= t)%nat -> 0 < c eta lam s) ->
  fst (exp_run I G eta lam (fun _ => gamma) theta0 t)
  = vscale (/ c eta lam t) (fst (nest_run G eta lam (fun _ => gamma) (theta0, vzero) t)).
Proof.
  intros Hhom Hg t Hpos.
  exact (nesterov_equivalence I G eta lam (fun _ => gamma) theta0 Hhom (fun _ => Hg) t Hpos).
Qed.

(* ---- Without the rewrite: no hyper-parameter-only map. ---- *)

(* Instance: three coordinates, theta_0 = e_0, eta = (1/10, 1/5, 1/10),
   lambda = 1/2, gamma = 9/10; step 0 uses the gradient of the
   scale-invariant loss x_1 / x_0, step 1 that of x_2 / x_0, step 2 a
   constant loss (gradient 0).  Then the gradients at the iterates, e_1 and
   e_2 / c_1, are orthogonal to the iterates, and the three steps force two
   incompatible values on the converted run's momentum gamma~_1. *)
Inductive coord3 : Type := X0 | X1 | X2.

Definition ex_grad (t : nat) (x : vec coord3) : vec coord3 :=
  match t with
  | O => fun i => match i with
                  | X0 => - x X1 / (x X0 * x X0) | X1 => / x X0 | X2 => 0 end
  | 1%nat => fun i => match i with
                      | X0 => - x X2 / (x X0 * x X0) | X1 => 0 | X2 => / x X0 end
  | _ => vzero
  end.

Lemma ex_grad_homogeneous : homogeneous_m1 ex_grad.
Proof.
  intros t a x Ha.
  apply functional_extensionality; intro i.
  destruct t as [| [| t]]; unfold vscale; simpl.
  - destruct (Req_dec (x X0) 0) as [H0 | H0].
    + destruct i; unfold Rdiv; rewrite ?H0, ?Rmult_0_r, ?Rmult_0_l, ?Rinv_0; ring.
    + destruct i; field; repeat split; lra.
  - destruct (Req_dec (x X0) 0) as [H0 | H0].
    + destruct i; unfold Rdiv; rewrite ?H0, ?Rmult_0_r, ?Rmult_0_l, ?Rinv_0; ring.
    + destruct i; field; repeat split; lra.
  - unfold vzero. ring.
Qed.

Definition ex_theta0 : vec coord3 := fun i => match i with X0 => 1 | _ => 0 end.
Definition ex_eta (t : nat) : R :=
  match t with O => / 10 | 1%nat => / 5 | _ => / 10 end.
Definition ex_lam (t : nat) : R := / 2.
Definition ex_gamma (t : nat) : R := 9 / 10.

Definition v3 (a b c : R) : vec coord3 :=
  fun i => match i with X0 => a | X1 => b | X2 => c end.

Definition ex_wd (t : nat) : vec coord3 * vec coord3 :=
  nest_run ex_grad ex_eta (fun _ => ex_lam 0) ex_gamma (ex_theta0, vzero) t.

Lemma ex_wd_1 : ex_wd 1 = (v3 (181 / 200) (- (19 / 100)) 0, v3 (1 / 2) 1 0).
Proof.
  unfold ex_wd; simpl. unfold nest_step, ex_theta0, ex_lam, ex_eta, ex_gamma, vzero; simpl.
  apply injective_projections; simpl; apply functional_extensionality; intros []; unfold v3; field.
Qed.

Lemma ex_wd_2 : ex_wd 2 = (v3 (13041 / 20000) (- (3159 / 10000)) (- (76 / 181)),
                           v3 (361 / 400) (161 / 200) (200 / 181)).
Proof.
  change (ex_wd 2) with (nest_step (ex_grad 1) (ex_eta 1) (ex_lam 0) (ex_gamma 1) (ex_wd 1)).
  rewrite ex_wd_1. unfold nest_step, ex_lam, ex_eta, ex_gamma; simpl.
  apply injective_projections; simpl; apply functional_extensionality; intros []; unfold v3; field.
Qed.

Lemma ex_wd_3 : fst (ex_wd 3) = v3 (2068011 / 4000000) (- (702189 / 2000000))
                                   (- (4249 / 9050)).
Proof.
  change (ex_wd 3) with (nest_step (ex_grad 2) (ex_eta 2) (ex_lam 0) (ex_gamma 2) (ex_wd 2)).
  rewrite ex_wd_2. unfold nest_step, ex_lam, ex_eta, ex_gamma; simpl.
  apply functional_extensionality; intros []; unfold v3, vzero; field.
Qed.

Section Converted.

Variables lr_e mom_e : nat -> R.

Definition ex_conv (t : nat) : vec coord3 * vec coord3 :=
  nest_run ex_grad lr_e (fun _ => 0) mom_e (ex_theta0, vzero) t.

Lemma ex_conv_1 :
  ex_conv 1 = (v3 1 (- (lr_e 0%nat * (1 + mom_e 0%nat))) 0, v3 0 1 0).
Proof.
  unfold ex_conv; simpl. unfold nest_step, ex_theta0, vzero; simpl.
  apply injective_projections; simpl; apply functional_extensionality; intros []; unfold v3; field.
Qed.

Lemma ex_conv_2 :
  ex_conv 2 = (v3 1 (- (lr_e 0%nat * (1 + mom_e 0%nat)) - lr_e 1%nat * mom_e 1%nat * mom_e 1%nat)
                  (- (lr_e 1%nat * (1 + mom_e 1%nat))),
               v3 0 (mom_e 1%nat) 1).
Proof.
  change (ex_conv 2) with (nest_step (ex_grad 1) (lr_e 1%nat) 0 (mom_e 1%nat) (ex_conv 1)).
  rewrite ex_conv_1. unfold nest_step; simpl.
  apply injective_projections; simpl; apply functional_extensionality; intros []; unfold v3; field.
Qed.

Lemma ex_conv_3 :
  fst (ex_conv 3)
  = v3 1 (- (lr_e 0%nat * (1 + mom_e 0%nat)) - lr_e 1%nat * mom_e 1%nat * mom_e 1%nat
          - lr_e 2%nat * mom_e 2%nat * mom_e 2%nat * mom_e 1%nat)
         (- (lr_e 1%nat * (1 + mom_e 1%nat)) - lr_e 2%nat * mom_e 2%nat * mom_e 2%nat).
Proof.
  change (ex_conv 3) with (nest_step (ex_grad 2) (lr_e 2%nat) 0 (mom_e 2%nat) (ex_conv 2)).
  rewrite ex_conv_2. unfold nest_step; simpl.
  apply functional_extensionality; intros []; unfold v3, vzero; ring.
Qed.

End Converted.

(* Main theorem: no LR schedule, no momentum schedule and no scale sequence
   make Nesterov SGD without weight decay (and without a buffer rewrite)
   follow theta_t / c_t on this instance; it fails by t = 3. *)
Theorem nesterov_no_hyperparameter_map :
  ~ (exists (lr_e mom_e cs : nat -> R), forall t : nat,
       fst (nest_run ex_grad lr_e (fun _ => 0) mom_e (ex_theta0, vzero) t)
       = vscale (/ cs t)
           (fst (nest_run ex_grad ex_eta (fun _ => ex_lam 0) ex_gamma (ex_theta0, vzero) t))).
Proof.
  intros [lr_e [mom_e [cs Hall]]].
  pose proof (Hall 1%nat) as H1. pose proof (Hall 2%nat) as H2. pose proof (Hall 3%nat) as H3.
  fold (ex_conv lr_e mom_e 1) (ex_conv lr_e mom_e 2) (ex_conv lr_e mom_e 3) in H1, H2, H3.
  fold (ex_wd 1) (ex_wd 2) (ex_wd 3) in H1, H2, H3.
  rewrite ex_conv_1, ex_wd_1 in H1. rewrite ex_conv_2, ex_wd_2 in H2.
  rewrite ex_conv_3, ex_wd_3 in H3. simpl in H1, H2.
  pose proof (f_equal (fun x => x X0) H1) as E10.
  pose proof (f_equal (fun x => x X1) H1) as E11.
  pose proof (f_equal (fun x => x X0) H2) as E20.
  pose proof (f_equal (fun x => x X1) H2) as E21.
  pose proof (f_equal (fun x => x X2) H2) as E22.
  pose proof (f_equal (fun x => x X0) H3) as E30.
  pose proof (f_equal (fun x => x X1) H3) as E31.
  pose proof (f_equal (fun x => x X2) H3) as E32.
  unfold v3, vscale in E10, E11, E20, E21, E22, E30, E31, E32.
  cbv beta iota in E10, E11, E20, E21, E22, E30, E31, E32.
  set (P := lr_e 0%nat * (1 + mom_e 0%nat)) in *.
  set (m := mom_e 1%nat) in *.
  set (S := lr_e 1%nat * m * m) in *.
  set (T := lr_e 1%nat * (1 + m)) in *.
  set (B := lr_e 2%nat * mom_e 2%nat * mom_e 2%nat) in *.
  set (BM := B * m) in *.
  set (q1 := / cs 1%nat) in *. set (q2 := / cs 2%nat) in *. set (q3 := / cs 3%nat) in *.
  assert (Hq1 : q1 = 200 / 181) by lra.
  assert (Hq2 : q2 = 20000 / 13041) by lra.
  assert (Hq3 : q3 = 4000000 / 2068011) by lra.
  rewrite Hq1 in E11. rewrite Hq2 in E21, E22. rewrite Hq3 in E31, E32.
  assert (HP : P = 38 / 181) by lra.
  assert (HS : S = 8000 / 29141) by lra.
  assert (HT : T = 1520000 / 2360421) by lra.
  assert (HB : B = 15920000000 / 60263908551) by lra.
  assert (HBM : BM = 800000 / 4110491) by lra.
  (* gamma~_1 = BM / B is forced by step 3 ... *)
  assert (Hm : m = 14661 / 19900).
  { unfold BM in HBM. rewrite HB in HBM. lra. }
  (* ... and then step 2 asks a1 m^2 = S and a1 (1 + m) = T: incompatible. *)
  unfold S in HS. unfold T in HT. rewrite Hm in HS, HT.
  lra.
Qed.
