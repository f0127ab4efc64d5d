(* Momentum.v -- PyTorch's momentum SGD on the abstract parameter space, and
   the one-step invariant behind the weight-decay / exponential-LR
   equivalence (Li & Arora, ICLR 2020, main theorem, momentum case).

   Convention (torch.optim.SGD, dampening = 0, nesterov = False):
       v_{t+1}     = gamma_t v_t + G_t(theta_t) + lambda_t theta_t
       theta_{t+1} = theta_t - eta_t v_{t+1}
   The learning rate multiplies the whole buffer; weight decay is coupled.
   [run] has a constant momentum gamma_t = gamma, [srun] a momentum schedule
   gamma_t; [srun_constant]: with gamma_t = gamma they are the same run.

   Shared by GeneralSchedule.v, MidRun.v, ScaleInvariance.v, KappaForm.v,
   ClosedForm.v, Texp.v, Rescaling.v and others.

   Main theorem: [step_invariant] (and [step_invariant_at], the same with the
   homogeneity needed at the current point only).
   Corresponding SymPy modules: proofs/general_schedule.py and
   proofs/closed_form.py (the one-step algebra below is the symbolic identity
   both of them check). *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

Section MomentumSGD.

Variable I : Type.

(* One step of momentum SGD.  [g] is the gradient map of this step, [lr] the
   learning rate eta, [wd] the weight decay lambda, [mom] the momentum gamma;
   the state is the pair (theta, v). *)
Definition sgd_step (g : vec I -> vec I) (lr wd mom : R) (s : vec I * vec I)
    : vec I * vec I :=
  (* v_{t+1} = gamma v_t + G_t(theta_t) + lambda_t theta_t *)
  let v' := fun i => mom * snd s i + g (fst s) i + wd * fst s i in
  (* theta_{t+1} = theta_t - eta_t v_{t+1} *)
  (fun i => fst s i - lr * v' i, v').

(* A run: schedules [lr] and [wd] indexed by the step counter t = 0, 1, ...,
   constant momentum [mom], initial state [s0]. *)
Fixpoint run (G : nat -> vec I -> vec I) (lr wd : nat -> R) (mom : R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => sgd_step (G t') (lr t') (wd t') mom (run G lr wd mom s0 t')
  end.

(* A run whose momentum is a schedule too: [mom t] is gamma_t, the momentum
   of step t (e.g. the momentum cycled by a one-cycle policy). *)
Fixpoint srun (G : nat -> vec I -> vec I) (lr wd mom : nat -> R)
    (s0 : vec I * vec I) (t : nat) : vec I * vec I :=
  match t with
  | O => s0
  | S t' => sgd_step (G t') (lr t') (wd t') (mom t') (srun G lr wd mom s0 t')
  end.

(* With a constant momentum it is [run]. *)
Lemma srun_constant (G : nat -> vec I -> vec I) (lr wd : nat -> R) (g : R)
    (s0 : vec I * vec I) (t : nat) :
  srun G lr wd (fun _ => g) s0 t = run G lr wd g s0 t.
Proof.
  induction t as [| t IH]; simpl; [reflexivity | now rewrite IH].
Qed.

(* The one-step invariant.  Suppose, at some step, the exponential-LR state
   is related to the weight-decay state by
       theta~ = theta / c0        v~ = c0 v + k theta,
   and the scales satisfy  c1 = c0 (1 - eta lambda) + gamma eta k.
   Then one weight-decay step with LR eta, and one step without weight decay
   with LR eta / (c0 c1), give
       theta~' = theta' / c1      v~' = c1 v' + ((c1 - c0) / eta) theta'.
   [step_invariant_at] needs the homogeneity only at the current point theta;
   [step_invariant] assumes it everywhere.
   (The recurrence for c in the paper's form, c_{t+1} = (1 + gamma r_t -
   eta_t lambda_t) c_t - gamma r_t c_{t-1}, is this relation with
   k_t = (c_t - c_{t-1}) / eta_{t-1}.) *)
Lemma step_invariant_at
    (g : vec I -> vec I)
    (c0 c1 k lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hg : g (vscale (/ c0) theta) = vscale c0 (g theta))
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0) (Hlr : lr <> 0)
    (Hrec : c1 = c0 * (1 - lr * wd) + mom * lr * k)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale k theta)) :
  let s' := sgd_step g lr wd mom (theta, v) in
  let s_e' := sgd_step g (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
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

(* The same, with the homogeneity of the gradient map assumed everywhere. *)
Lemma step_invariant
    (G : nat -> vec I -> vec I) (t : nat)
    (c0 c1 k lr wd mom : R) (theta v theta_e v_e : vec I)
    (Hhom : homogeneous_m1 G)
    (Hc0 : 0 < c0) (Hc1 : c1 <> 0) (Hlr : lr <> 0)
    (Hrec : c1 = c0 * (1 - lr * wd) + mom * lr * k)
    (Htheta : theta_e = vscale (/ c0) theta)
    (Hv : v_e = vadd (vscale c0 v) (vscale k theta)) :
  let s' := sgd_step (G t) lr wd mom (theta, v) in
  let s_e' := sgd_step (G t) (lr / (c0 * c1)) 0 mom (theta_e, v_e) in
  fst s_e' = vscale (/ c1) (fst s') /\
  snd s_e' = vadd (vscale c1 (snd s')) (vscale ((c1 - c0) / lr) (fst s')).
Proof.
  intros s' s_e'.
  subst s' s_e' theta_e v_e.
  unfold sgd_step; simpl.
  rewrite (homogeneous_at_inv G t c0 theta Hhom Hc0).
  assert (Hc0' : c0 <> 0) by lra.
  subst c1.
  split; apply functional_extensionality; intro i; unfold vscale, vadd.
  - field; repeat split; assumption.
  - field; repeat split; assumption.
Qed.

End MomentumSGD.

Arguments sgd_step {I} g lr wd mom s.
Arguments run {I} G lr wd mom s0 t.
Arguments srun {I} G lr wd mom s0 t.
Arguments srun_constant {I} G lr wd g s0 t.
Arguments step_invariant_at {I} g c0 c1 k lr wd mom theta v theta_e v_e.
Arguments step_invariant {I} G t c0 c1 k lr wd mom theta v theta_e v_e.
