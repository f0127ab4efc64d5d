(* negative/WrongTexpNoShift.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the TEXP theorem of Texp.v (step decay as a tapered exponential
   LR, Li & Arora, ICLR 2020) WITHOUT the boundary buffer shift
   (delta_t = 0 at every step).  The proof script is the one that succeeds
   with the shift delta_t = q_{t-1} - q_t; proofs/coq_check.py checks that
   coqc rejects this file inside [wrong_texp_invariant] and that the marked
   line, once fixed, compiles.
   Corresponding SymPy module: proofs/texp.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec Momentum Texp.
Open Scope R_scope.

Section WrongTexp.

Variable I : Type.
Variable G : nat -> vec I -> vec I.
Variables eta lam alpha : nat -> R.
Variable gamma : R.
Variable theta0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_pos : forall t, 0 < eta t.
Hypothesis alpha_pos : forall t, 0 < alpha t.
Hypothesis alpha_root :
  forall t, alpha t ^ 2 - (1 + gamma - eta t * lam t) * alpha t + gamma = 0.

Let c := Texp.c alpha.
Let q := Texp.q eta alpha.
Let exp_lr := Texp.exp_lr eta alpha.
Let wd_run := Texp.wd_run I G eta lam gamma theta0.

Definition wrong_delta (t : nat) : R := 0. (* FIX: delta eta alpha t. *)

Definition wrong_shift (t : nat) (s : vec I * vec I) : vec I * vec I :=
  (fst s, vadd (snd s) (vscale (wrong_delta t * c t ^ 2) (fst s))).

Fixpoint wrong_run (t : nat) : vec I * vec I :=
  match t with
  | O => (theta0, vscale (- q 0) theta0)
  | S t' => sgd_step (G t') (exp_lr t') 0 gamma (wrong_shift t' (wrong_run t'))
  end.

Theorem wrong_texp_invariant (t : nat) :
  fst (wrong_run t) = vscale (/ c t) (fst (wd_run t)) /\
  snd (wrong_run t)
  = vadd (vscale (c t) (snd (wd_run t))) (vscale (- c t * qprev eta alpha t) (fst (wd_run t))).
Proof.
  induction t as [| t IH].
  - unfold wd_run, Texp.wd_run; simpl.
    split; apply functional_extensionality; intro i; unfold vscale, vadd, vzero; simpl.
    + unfold c; simpl. rewrite Rinv_1. ring.
    + unfold c, q; simpl. ring.
  - destruct IH as [IHtheta IHv].
    pose proof (c_pos alpha alpha_pos t) as Hct.
    pose proof (c_pos alpha alpha_pos (S t)) as Hct1.
    pose proof (alpha_pos t) as Ha.
    assert (Heta : eta t <> 0) by (pose proof (eta_pos t); lra).
    assert (Hshift : snd (wrong_shift t (wrong_run t))
                     = vadd (vscale (c t) (snd (wd_run t)))
                            (vscale (- c t * q t) (fst (wd_run t)))).
    { unfold wrong_shift, wrong_delta; cbn [fst snd]. rewrite IHv, IHtheta.
      apply functional_extensionality; intro i; unfold vscale, vadd.
      unfold c, q. destruct t as [| t']; simpl qprev; simpl delta; simpl Texp.c.
      - simpl. ring.
      - pose proof (c_pos alpha alpha_pos t'). pose proof (alpha_pos t').
        field. repeat split; lra. }
    assert (Hrec : c (S t) = c t * (1 - eta t * lam t) + gamma * eta t * (- c t * q t)).
    { unfold c, q. simpl Texp.c. unfold Texp.q. pose proof (alpha_root t) as Hr.
      apply Rmult_eq_reg_l with (alpha t); [| lra].
      assert (E : alpha t * (Texp.c alpha t * (1 - eta t * lam t)
                             + gamma * eta t * (- Texp.c alpha t
                                                * ((1 - alpha t) / (alpha t * eta t))))
                  = Texp.c alpha t * ((1 - eta t * lam t) * alpha t - gamma * (1 - alpha t)))
        by (field; split; lra).
      rewrite E.
      transitivity (Texp.c alpha t * ((1 - eta t * lam t) * alpha t - gamma * (1 - alpha t))
                    + Texp.c alpha t * (alpha t ^ 2 - (1 + gamma - eta t * lam t) * alpha t + gamma));
        [ring | rewrite Hr; ring]. }
    pose proof (step_invariant G t (c t) (c (S t)) (- c t * q t) (eta t) (lam t) gamma
                  (fst (wd_run t)) (snd (wd_run t))
                  (fst (wrong_shift t (wrong_run t))) (snd (wrong_shift t (wrong_run t)))
                  G_homogeneous Hct (Rgt_not_eq _ _ Hct1) Heta Hrec IHtheta Hshift) as [Htheta Hv].
    unfold wd_run, Texp.wd_run in *; cbn [wrong_run run].
    rewrite <- surjective_pairing in Htheta, Hv.
    split.
    + exact Htheta.
    + etransitivity; [exact Hv |]. f_equal. f_equal.
      unfold c, q. simpl qprev. simpl Texp.c. unfold Texp.q. field. split; lra.
Qed.

End WrongTexp.
