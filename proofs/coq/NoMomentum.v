(* NoMomentum.v -- the main theorem without momentum (Li & Arora, ICLR 2020,
   main theorem, momentum-free case).

   Weight-decay run:  theta_{t+1} = theta_t - eta (G_t(theta_t) + lambda theta_t).
   No-WD run:         theta~_{t+1} = theta~_t - eta~_t G_t(theta~_t),
                      eta~_t = eta (1 - eta lambda)^(-2t-1),
   both from the same theta_0.  With 0 < eta lambda < 1:
                      theta~_t = (1 - eta lambda)^(-t) theta_t   for every t.
   Negative powers are written as divisions: eta / a^(2t+1) and / a^t with
   a = 1 - eta lambda.  The proof uses only eta lambda < 1 (so that a > 0);
   the paper's other condition, eta lambda > 0, is not needed.

   Main theorem: [no_momentum_equivalence].
   Corresponding SymPy module: proofs/no_momentum.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Vec.
Open Scope R_scope.

Section NoMomentum.

Variable I : Type.
Variable G : nat -> vec I -> vec I.          (* per-step gradient map G_t *)
Variables eta lam : R.                       (* constant LR and WD *)
Variable theta0 : vec I.

Hypothesis G_homogeneous : homogeneous_m1 G.
Hypothesis eta_lam_lt_1 : eta * lam < 1.

(* Plain gradient descent with LR schedule [lr] and WD schedule [wd]:
   theta_{t+1} = theta_t - eta_t (G_t(theta_t) + lambda_t theta_t). *)
Fixpoint gd (lr wd : nat -> R) (t : nat) : vec I :=
  match t with
  | O => theta0
  | S t' =>
      let theta := gd lr wd t' in
      fun i => theta i - lr t' * (G t' theta i + wd t' * theta i)
  end.

Definition a : R := 1 - eta * lam.

Definition wd_run (t : nat) : vec I := gd (fun _ => eta) (fun _ => lam) t.

Definition exp_lr (t : nat) : R := eta / a ^ (2 * t + 1).

Definition exp_run (t : nat) : vec I := gd exp_lr (fun _ => 0) t.

Lemma pow_2t1 (x : R) (t : nat) : x ^ (2 * t + 1) = x ^ t * x ^ t * x.
Proof.
  rewrite pow_add, pow_1.
  replace (2 * t)%nat with (t + t)%nat by lia.
  rewrite pow_add. ring.
Qed.

(* Main theorem (no momentum). *)
Theorem no_momentum_equivalence (t : nat) :
  exp_run t = vscale (/ a ^ t) (wd_run t).
Proof.
  assert (Ha : 0 < a) by (unfold a; lra).
  induction t as [| t IH].
  - apply functional_extensionality; intro i.
    unfold exp_run, wd_run, vscale; simpl. rewrite Rinv_1. ring.
  - assert (Hp : 0 < a ^ t) by (apply pow_lt; exact Ha).
    unfold exp_run, wd_run in *; simpl gd.
    rewrite IH.
    rewrite (homogeneous_at_inv G t (a ^ t) _ G_homogeneous Hp).
    apply functional_extensionality; intro i.
    unfold vscale, exp_lr.
    rewrite pow_2t1, <- tech_pow_Rmult.
    unfold a in *.
    field. split; lra.
Qed.

End NoMomentum.

Arguments gd {I} G theta0 lr wd t.
Arguments wd_run {I} G eta lam theta0 t.
Arguments exp_run {I} G eta lam theta0 t.
