(* Texp.v -- TEXP: step decay as a tapered exponential LR (Li & Arora, ICLR
   2020, the TEXP schedule), with the buffer shift that makes it exact, in
   PyTorch's SGD convention.

   Per-step hyper-parameters eta_t > 0, lambda_t and a root alpha_t > 0 of
       alpha^2 - (1 + gamma - eta_t lambda_t) alpha + gamma = 0
   (for step decay they are constant inside each phase; the theorem allows
   any per-step sequence).  Put
       c_0 = 1,  c_{t+1} = alpha_t c_t,   eta~_t = eta_t / (c_t c_{t+1}),
       q_t = (1 - alpha_t) / (alpha_t eta_t),
       delta_t = q_{t-1} - q_t      (t >= 1; 0 inside a phase).
   Weight-decay run:  PyTorch momentum SGD from (theta_0, 0).
   TEXP run:          no weight decay, LR eta~_t, from (theta_0, -q_0 theta_0)
                      (the closed form's buffer); at the start of every step
                      t >= 1 the buffer gets  v~ <- v~ + delta_t c_t^2 theta~_t.
   Claims.
     [texp_equivalence]: theta~_t = theta_t / c_t for every t, and the buffer
       before the shift of step t is c_t v_t - c_t q_{t-1} theta_t (t >= 1).
     [texp_lr_ratio]: eta~_{t+1} = eta~_t (eta_{t+1} / eta_t) / (alpha_t alpha_{t+1}):
       alpha^-2 inside a phase, (eta_I / eta_{I-1}) / (alpha_{I-1} alpha_I)
       entering phase I.
     [texp_shift_zero_inside_phase]: no shift where (eta, alpha) do not change.

   Main theorems: [texp_equivalence], [texp_lr_ratio].
   Corresponding SymPy module: proofs/texp.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum.
Open Scope R_scope.

Section Texp.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam alpha : nat -> R.          (* per-step LR, WD and root *)
Variable gamma : R.                          (* momentum *)
Variable theta0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.
Hypothesis alpha_pos : forall t, 0 < alpha t.
Hypothesis alpha_root :
  forall t, alpha t ^ 2 - (1 + gamma - eta t * lam t) * alpha t + gamma = 0.

Fixpoint c (t : nat) : R :=
  match t with
  | O => 1
  | S t' => alpha t' * c t'
  end.

Definition q (t : nat) : R := (1 - alpha t) / (alpha t * eta t).

Definition delta (t : nat) : R :=
  match t with
  | O => 0
  | S t' => q t' - q t
  end.

Definition exp_lr (t : nat) : R := eta t / (c t * c (S t)).

(* The boundary correction v~ <- v~ + delta_t c_t^2 theta~_t. *)
Definition shift (t : nat) (s : vec I * vec I) : vec I * vec I :=
  (fst s, vadd (snd s) (vscale (delta t * c t ^ 2) (fst s))).

Fixpoint texp_run (t : nat) : vec I * vec I :=
  match t with
  | O => (theta0, vscale (- q 0) theta0)
  | S t' => sgd_step (G t') (exp_lr t') 0 gamma (shift t' (texp_run t'))
  end.

Definition wd_run (t : nat) : vec I * vec I := run G eta lam gamma (theta0, vzero) t.

Lemma c_pos (t : nat) : 0 < c t.
Proof.
  induction t as [| t IH]; simpl; [lra |].
  apply Rmult_lt_0_compat; [apply alpha_pos | exact IH].
Qed.

(* The buffer coefficient of the step: q_{t-1} before the shift, q_t after. *)
Definition qprev (t : nat) : R :=
  match t with
  | O => q 0
  | S t' => q t'
  end.

Lemma texp_invariant (t : nat) :
  fst (texp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (texp_run t)
  = vadd (vscale (c t) (snd (wd_run t))) (vscale (- c t * qprev t) (fst (wd_run t))).
Proof.
  induction t as [| t IH].
  - unfold wd_run; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + rewrite Rinv_1. ring.
    + ring.
  - destruct IH as [IHtheta IHv].
    pose proof (c_pos t) as Hct.
    pose proof (c_pos (S t)) as Hct1.
    pose proof (alpha_pos t) as Ha.
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    (* after the shift, the buffer has coefficient -c_t q_t *)
    assert (Hshift : snd (shift t (texp_run t))
                     = vadd (vscale (c t) (snd (wd_run t)))
                            (vscale (- c t * q t) (fst (wd_run t)))).
    { unfold shift; cbn [fst snd]. rewrite IHv, IHtheta.
      apply functional_extensionality; intro i; unfold vscale, vadd.
      destruct t as [| t']; simpl qprev; simpl delta; simpl c.
      - simpl. ring.
      - fold (c t'). pose proof (c_pos t'). pose proof (alpha_pos t').
        field. repeat split; lra. }
    assert (Hrec : c (S t) = c t * (1 - eta t * lam t) + gamma * eta t * (- c t * q t)).
    { simpl c. unfold q. pose proof (alpha_root t) as Hr.
      apply Rmult_eq_reg_l with (alpha t); [| lra].
      assert (E : alpha t * (c t * (1 - eta t * lam t)
                             + gamma * eta t * (- c t * ((1 - alpha t) / (alpha t * eta t))))
                  = c t * ((1 - eta t * lam t) * alpha t - gamma * (1 - alpha t)))
        by (field; split; lra).
      rewrite E.
      transitivity (c t * ((1 - eta t * lam t) * alpha t - gamma * (1 - alpha t))
                    + c t * (alpha t ^ 2 - (1 + gamma - eta t * lam t) * alpha t + gamma));
        [ring | rewrite Hr; ring]. }
    pose proof (step_invariant G t (c t) (c (S t)) (- c t * q t) (eta t) (lam t) gamma
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (shift t (texp_run t))) (snd (shift t (texp_run t)))
                  G_homogeneous Hct ltac:(lra) Heta Hrec IHtheta Hshift) as [Htheta Hv].
    unfold wd_run in *; cbn [texp_run run].
    rewrite <- surjective_pairing in Htheta, Hv.
    unfold exp_lr.
    split.
    + exact Htheta.
    + rewrite Hv. f_equal. f_equal.
      simpl qprev. simpl c. unfold q. field. split; lra.
Qed.

(* Main theorem: the TEXP run with the boundary shifts is exact. *)
Theorem texp_equivalence (t : nat) :
  fst (texp_run t) = vscale (/ c t) (fst (wd_run t)) /\
  (forall t', t = S t' ->
   snd (texp_run t)
   = vadd (vscale (c t) (snd (wd_run t))) (vscale (- c t * q t') (fst (wd_run t)))).
Proof.
  destruct (texp_invariant t) as [Ht Hv]. split; [exact Ht |].
  intros t' ->. exact Hv.
Qed.

(* Main theorem: the LR ratio between consecutive steps. *)
Theorem texp_lr_ratio (t : nat) :
  exp_lr (S t) = exp_lr t * (eta (S t) / eta t) / (alpha t * alpha (S t)).
Proof.
  unfold exp_lr. simpl c.
  pose proof (c_pos t). pose proof (alpha_pos t). pose proof (alpha_pos (S t)).
  pose proof (eta_pos t).
  field. repeat split; lra.
Qed.

Lemma texp_shift_zero_inside_phase (t : nat) :
  eta (S t) = eta t -> alpha (S t) = alpha t -> shift (S t) = fun s => s.
Proof.
  intros He Ha. apply functional_extensionality; intros [th v].
  unfold shift, delta, q; cbn [fst snd]. rewrite He, Ha.
  f_equal. apply functional_extensionality; intro i. unfold vadd, vscale. ring.
Qed.

End Texp.
