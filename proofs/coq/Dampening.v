(* Dampening.v -- PyTorch SGD with dampening tau and coupled weight decay is
   the same SGD (same dampening, same momentum) without weight decay, with
   the learning rate alone scheduled and a scale sequence modified by the
   dampening (a project result extending Li & Arora, ICLR 2020, main theorem).

   Convention (torch.optim.SGD, dampening = tau, nesterov = False), with
   d_t = G_t(theta_t) + lambda_t theta_t, v_0 = 0 and a momentum schedule
   gamma_t:
       v_1 = d_0                                  (PyTorch's first step)
       v_{t+1} = gamma_t v_t + (1 - tau) d_t      (t >= 1)
       theta_{t+1} = theta_t - eta_t v_{t+1}.
   With v_0 = 0 the first step is the general step with tau_0 = 0, so the run
   below uses the per-step dampening tau_t = (t = 0 ? 0 : tau).

   Scale sequence: c_0 = 1, kappa_0 = 0, and
       c_{t+1}     = (1 - (1 - tau_t) eta_t lambda_t) c_t + gamma_t eta_t kappa_t
       kappa_{t+1} = gamma_t kappa_t - (1 - tau_t) lambda_t c_t,
   i.e. c_1 = 1 - eta_0 lambda_0, kappa_1 = -lambda_0.
   Claim: the run without weight decay, with the same gamma_t and LR
   eta~_t = eta_t / (c_t c_{t+1}), satisfies theta~_t = theta_t / c_t and
   v~_t = c_t v_t + kappa_t theta_t for every t with c_0, ..., c_t > 0 (no
   state rewrite).

   Main theorem: [dampening_equivalence] (momentum schedule, run [damp_srun]);
   [dampening_equivalence_const]: its constant-momentum form ([damp_run]);
   one-step invariant: [damp_step_invariant] (any momentum of that step).
   Negative control: RefuteDampening.v's [wrong_damp_scale_refuted] proves
   the one-step invariant with the undampened scale recurrence
   c1 = (1 - eta lambda) c0 + gamma eta kappa0 (instead of the decay term
   (1 - tau) eta lambda) false on Witness.v's loss.
   Corresponding SymPy module: proofs/dampening.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

Section Dampening.

Variable I : Type.

(* One step of dampened momentum SGD; [damp] is this step's dampening. *)
Definition damp_step (g : vec I -> vec I) (lr wd mom damp : R) (s : vec I * vec I)
    : vec I * vec I :=
  let v' := fun i => mom * snd s i + (1 - damp) * (g (fst s) i + wd * fst s i) in
  (fun i => fst s i - lr * v' i, v').

(* The dampening PyTorch applies at step t: none on the first step. *)
Definition damp_at (tau : R) (t : nat) : R := match t with O => 0 | S _ => tau end.

(* A run with a constant momentum [mom] ... *)
Fixpoint damp_run (G : nat -> vec I -> vec I) (lr wd : nat -> R) (mom tau : R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => damp_step (G t') (lr t') (wd t') mom (damp_at tau t')
              (damp_run G lr wd mom tau s0 t')
  end.

(* ... and with a momentum schedule [mom t]. *)
Fixpoint damp_srun (G : nat -> vec I -> vec I) (lr wd mom : nat -> R) (tau : R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => damp_step (G t') (lr t') (wd t') (mom t') (damp_at tau t')
              (damp_srun G lr wd mom tau s0 t')
  end.

Lemma damp_srun_constant (G : nat -> vec I -> vec I) (lr wd : nat -> R) (g tau : R)
    (s0 : vec I * vec I) (t : nat) :
  damp_srun G lr wd (fun _ => g) tau s0 t = damp_run G lr wd g tau s0 t.
Proof.
  induction t as [| t IH]; simpl; [reflexivity | now rewrite IH].
Qed.

(* The one-step invariant: if theta~ = theta / c0 and v~ = c0 v + k0 theta,
   then with c1, k1 given by the recurrence and LR eta / (c0 c1) the step
   without weight decay gives theta~' = theta' / c1, v~' = c1 v' + k1 theta'. *)
Lemma damp_step_invariant
    (g : vec I -> vec I) (c0 c1 k0 k1 lr wd mom damp : R)
    (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0)
    (Hc : c1 = (1 - (1 - damp) * lr * wd) * c0 + mom * lr * k0)
    (Hk : k1 = mom * k0 - (1 - damp) * wd * c0)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale k0 theta)) :
  let s' := damp_step g lr wd mom damp (theta, v) in
  let s_e' := damp_step g (lr / (c0 * c1)) 0 mom damp (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale c1 (snd s')) (vscale k1 (fst s')).
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold damp_step; simpl.
  rewrite Hg.
  assert (Hc0' : c0 <> 0) by lra.
  subst c1 k1.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; split; assumption.
  - ring.
Qed.

Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : nat -> R.                (* LR and WD schedules *)
Variable gamma : nat -> R.                   (* momentum schedule gamma_t *)
Variable tau : R.                            (* dampening *)
Variable theta0 : vec I.                     (* common initial point *)

Hypothesis G_homogeneous : homogeneous_m1 G.

(* (c_t, kappa_t). *)
Fixpoint ck (t : nat) : R * R :=
  match t with
  | O => (1, 0)
  | S t' =>
      let c := fst (ck t') in
      let k := snd (ck t') in
      let dm := damp_at tau t' in
      ((1 - (1 - dm) * eta t' * lam t') * c + gamma t' * eta t' * k,
       gamma t' * k - (1 - dm) * lam t' * c)
  end.

Definition c (t : nat) : R := fst (ck t).
Definition kappa (t : nat) : R := snd (ck t).

Lemma c_1 : c 1 = 1 - eta 0 * lam 0.
Proof. unfold c; simpl. ring. Qed.

Lemma kappa_1 : kappa 1 = - lam 0.
Proof. unfold kappa; simpl. ring. Qed.

Definition wd_run (t : nat) : vec I * vec I :=
  damp_srun G eta lam gamma tau (theta0, vzero) t.

Definition exp_lr (t : nat) : R := eta t / (c t * c (S t)).

Definition exp_run (t : nat) : vec I * vec I :=
  damp_srun G exp_lr (fun _ => 0) gamma tau (theta0, vzero) t.

Lemma dampening_invariant (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (exp_run t) = vadd (vscale (c t) (snd (wd_run t))) (vscale (kappa t) (fst (wd_run t))).
Proof.
  induction t as [| t IH]; intros Hpos.
  - unfold exp_run, wd_run, c, kappa; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - assert (Hct : 0 < c t) by (apply Hpos; lia).
    assert (Hct1 : 0 < c (S t)) by (apply Hpos; lia).
    destruct IH as [IHtheta IHv]; [intros s Hs; apply Hpos; lia |].
    pose proof (damp_step_invariant (G t) (c t) (c (S t)) (kappa t) (kappa (S t))
                  (eta t) (lam t) (gamma t) (damp_at tau t)
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (exp_run t)) (snd (exp_run t))
                  (homogeneous_at_inv G t (c t) (fst (wd_run t)) G_homogeneous Hct)
                  Hct ltac:(lra) ltac:(unfold c, kappa; simpl; ring)
                  ltac:(unfold c, kappa; simpl; ring)
                  IHtheta IHv) as [Htheta Hv].
    unfold exp_run, wd_run in *; simpl.
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr at 1.
    split.
    + exact Htheta.
    + exact Hv.
Qed.

(* Main theorem: dampened SGD with weight decay == dampened SGD without
   weight decay and LR eta_t / (c_t c_{t+1}), while c_0, ..., c_t > 0. *)
Theorem dampening_equivalence (t : nat) :
  (forall s, (s <= t)%nat -> 0 < c s) ->
  fst (exp_run t) = vscale (/ c t) (fst (wd_run t)).
Proof.
  intro Hpos. exact (proj1 (dampening_invariant t Hpos)).
Qed.

End Dampening.

Arguments damp_step {I} g lr wd mom damp s.
Arguments damp_run {I} G lr wd mom tau s0 t.
Arguments damp_srun {I} G lr wd mom tau s0 t.

(* Main theorem, constant momentum gamma (the run [damp_run]). *)
Theorem dampening_equivalence_const (I : Type) (G : nat -> vec I -> vec I)
    (eta lam : nat -> R) (gamma tau : R) (theta0 : vec I) :
  homogeneous_m1 G ->
  forall t : nat,
  (forall s, (s <= t)%nat -> 0 < c eta lam (fun _ => gamma) tau s) ->
  fst (damp_run G (exp_lr eta lam (fun _ => gamma) tau) (fun _ => 0) gamma tau (theta0, vzero) t)
  = vscale (/ c eta lam (fun _ => gamma) tau t) (fst (damp_run G eta lam gamma tau (theta0, vzero) t)).
Proof.
  intros Hhom t Hpos. rewrite <- !damp_srun_constant.
  exact (dampening_equivalence I G eta lam (fun _ => gamma) tau theta0 Hhom t Hpos).
Qed.
