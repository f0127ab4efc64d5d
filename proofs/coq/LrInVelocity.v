(* LrInVelocity.v -- momentum SGD with the learning rate inside the velocity
   (the Keras/TensorFlow convention) and coupled weight decay is the same
   update without weight decay when both the LR and the momentum are
   scheduled; the LR alone does not suffice (a project result extending
   Li & Arora, ICLR 2020, main theorem).

   Convention, with d_t = G_t(theta_t) + lambda_t theta_t and v_0 = 0:
       v_{t+1} = gamma_t v_t - eta_t d_t,     theta_{t+1} = theta_t + v_{t+1}.
   Scale sequence: c_{-1} = c_0 = 1,
       c_{t+1} = (1 + gamma - eta_t lambda_t) c_t - gamma c_{t-1}
   (so c_1 = 1 - eta_0 lambda_0).  Converted run: no weight decay,
       eta~_t = eta_t / (c_t c_{t+1}),   gamma~_t = gamma c_{t-1} / c_{t+1}.
   Claim: theta~_t = theta_t / c_t and
   v~_t = v_t / c_{t-1} + (1 / c_t - 1 / c_{t-1}) theta_t while c_{-1}, ..., c_t
   are nonzero.

   Main theorems: [lr_in_velocity_equivalence] (exact map; one-step invariant
   [keras_step_invariant]) and [lr_only_refuted]: with the momentum kept at
   gamma, no LR schedule and no scale sequence make the converted run follow
   theta_t / c_t, on a concrete two-coordinate instance (theta_0 = (1, 0),
   gradient of the scale-invariant loss x_2 / x_1 at step 0, a constant loss
   afterwards, eta = 1/10, lambda = 1/2, gamma = 9/10): it fails at t = 2.
   Corresponding SymPy module: proofs/lr_in_velocity.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

Section Keras.

Variable I : Type.

(* One step: v' = mom v - lr (g(theta) + wd theta), theta' = theta + v'. *)
Definition keras_step (g : vec I -> vec I) (lr wd mom : R) (s : vec I * vec I)
    : vec I * vec I :=
  let v' := fun i => mom * snd s i - lr * (g (fst s) i + wd * fst s i) in
  (fun i => fst s i + v' i, v').

Fixpoint keras_run (G : nat -> vec I -> vec I) (lr wd mom : nat -> R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => keras_step (G t') (lr t') (wd t') (mom t') (keras_run G lr wd mom s0 t')
  end.

(* One-step invariant: cp = c_{t-1}, c0 = c_t, c1 = c_{t+1}. *)
Lemma keras_step_invariant
    (g : vec I -> vec I) (cp c0 c1 lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hcp : cp <> 0) (Hc0 : c0 <> 0) (Hc1 : c1 <> 0)
    (Hrec : c1 = (1 + mom - lr * wd) * c0 - mom * cp)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale (/ cp) v) (vscale (/ c0 - / cp) theta)) :
  let s' := keras_step g lr wd mom (theta, v) in
  let s_e' := keras_step g (lr / (c0 * c1)) 0 (mom * cp / c1) (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale (/ c0) (snd s')) (vscale (/ c1 - / c0) (fst s')).
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold keras_step; simpl.
  rewrite Hg.
  subst c1.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; repeat split; assumption.
  - field; repeat split; assumption.
Qed.

Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : R.                          (* momentum *)
Variable theta0 : vec I.                     (* common initial point *)

Hypothesis G_homogeneous : homogeneous_m1 G.

(* (c_{t-1}, c_t). *)
Fixpoint cc (t : nat) : R * R :=
  match t with
  | O => (1, 1)
  | S t' => (snd (cc t'), (1 + gamma - eta t' * lam t') * snd (cc t') - gamma * fst (cc t'))
  end.

Definition c (t : nat) : R := snd (cc t).
Definition cprev (t : nat) : R := fst (cc t).

Lemma c_1 : c 1 = 1 - eta 0 * lam 0.
Proof. unfold c; simpl. ring. Qed.

Definition wd_run (t : nat) : vec I * vec I :=
  keras_run G eta lam (fun _ => gamma) (theta0, vzero) t.

Definition exp_lr (t : nat) : R := eta t / (c t * c (S t)).
Definition exp_mom (t : nat) : R := gamma * c (pred t) / c (S t).

Lemma cprev_S (t : nat) : cprev (S t) = c t.
Proof. reflexivity. Qed.

(* gamma~_t = gamma c_{t-1} / c_{t+1} with c_{-1} = 1 = c_0. *)
Lemma exp_mom_cprev (t : nat) : exp_mom t = gamma * cprev t / c (S t).
Proof. destruct t; reflexivity. Qed.

Definition exp_run (t : nat) : vec I * vec I :=
  keras_run G exp_lr (fun _ => 0) exp_mom (theta0, vzero) t.

Lemma lr_in_velocity_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (exp_run t) = vadd (vscale (/ cprev t) (snd (wd_run t)))
                         (vscale (/ c t - / cprev t) (fst (wd_run t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - unfold exp_run, wd_run, c, cprev; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    assert (Hcp : cprev t <> 0).
    { destruct t as [| t'].
      - unfold cprev; simpl. lra.
      - rewrite cprev_S. assert (0 < c t') by (apply Hpos; lia). lra. }
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    pose proof (keras_step_invariant (G t) (cprev t) (c t) (c (S t))
                  (eta t) (lam t) gamma
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (exp_run t)) (snd (exp_run t))
                  (homogeneous_at_inv G t (c t) (fst (wd_run t)) G_homogeneous Hct)
                  Hcp ltac:(lra) ltac:(lra) ltac:(unfold c, cprev; simpl; ring)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_run, wd_run in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr at 1. rewrite exp_mom_cprev.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem: the exact map with LR and momentum schedules. *)
Theorem lr_in_velocity_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)).
Proof.
  intro Hpos. exact (proj1 (lr_in_velocity_invariant t Hpos)).
Qed.

End Keras.

Arguments keras_step {I} g lr wd mom s.
Arguments keras_run {I} G lr wd mom s0 t.

(* ---- The LR alone: refuted on a concrete instance. ---- *)

(* Index type bool: coordinate [true] is x_1, [false] is x_2.  Step 0 uses
   the gradient of the scale-invariant loss x_2 / x_1 (homogeneous of degree
   -1); later steps a constant loss (gradient 0). *)
Definition ex_grad (t : nat) (x : vec bool) : vec bool :=
  match t with
  | O => fun i => if i then - x false / (x true * x true) else / x true
  | S _ => vzero
  end.

Lemma ex_grad_homogeneous : homogeneous_m1 ex_grad.
Proof.
  intros t a x Ha.
  apply functional_extensionality; intro i.
  destruct t as [| t]; unfold vscale; simpl.
  - destruct (Req_dec (x true) 0) as [H0 | H0].
    + destruct i; unfold Rdiv; rewrite H0; rewrite ?Rmult_0_r, ?Rmult_0_l, ?Rinv_0; ring.
    + destruct i; field; split; lra.
  - unfold vzero. ring.
Qed.

Definition ex_theta0 : vec bool := fun i => if i then 1 else 0.
Definition ex_eta (t : nat) : R := / 10.
Definition ex_lam (t : nat) : R := / 2.
Definition ex_gamma (t : nat) : R := 9 / 10.

(* Main theorem: no LR schedule [lr_e] with the momentum kept at gamma, and no
   scale sequence [cs], give theta~_t = theta_t / cs_t for all t. *)
Theorem lr_only_refuted :
  ~ (exists (lr_e cs : nat -> R), forall t : nat,
       fst (keras_run ex_grad lr_e (fun _ => 0) ex_gamma (ex_theta0, vzero) t)
       = vscale (/ cs t)
           (fst (keras_run ex_grad ex_eta ex_lam ex_gamma (ex_theta0, vzero) t))).
Proof.
  intros [lr_e [cs Hall]].
  pose proof (f_equal (fun x => x true) (Hall 1%nat)) as H1t.
  pose proof (f_equal (fun x => x false) (Hall 1%nat)) as H1f.
  pose proof (f_equal (fun x => x true) (Hall 2%nat)) as H2t.
  pose proof (f_equal (fun x => x false) (Hall 2%nat)) as H2f.
  simpl in H1t, H1f, H2t, H2f.
  unfold keras_step, vscale, vzero, ex_theta0, ex_eta, ex_lam, ex_gamma in *; simpl in *.
  rewrite ?Rmult_1_l, ?Rinv_1 in *.
  set (x := / cs 1%nat) in *. set (y := / cs 2%nat) in *.
  set (a := lr_e 0%nat) in *.
  lra.
Qed.
