(* RefuteEquilibrium.v -- the second-moment steady state with momentum
   (Equilibrium.v; the equilibrium behind the exponential-LR equivalence of
   Li & Arora, ICLR 2020) does not have the momentum-free norm: the
   negative control's wrong claim ([equilibrium_no_momentum_refuted]), that
   with
       A = sqrt(eta sigma^2 / (lambda (2 - eta lambda))),
       B = -lambda A / (1 + gamma),   C = 2 lambda A / (eta (1 + gamma)),
   (A, B, C) is a fixed point of the closed moment map for every gamma in
   (0, 1), is false, not merely unproven.  The map has no gradient argument
   (the gradient enters only through sigma^2); the witness is a concrete
   choice of reals satisfying every hypothesis, on which the right fixed
   point holds.

   Instance: eta = lambda = sigma^2 = 1, gamma = 1/2.  Then A = 1,
   B = -2/3, C = 4/3, and the map sends C to
   gamma^2 C + lambda^2 A + 2 gamma lambda B + sigma^2 / A = 5/3, not 4/3.
   The right norm there is A*^2 = 3/2.

   Main theorem: [equilibrium_no_momentum_refuted]; the right statement on
   the same instance: [equilibrium_instance].
   Corresponding SymPy module: proofs/equilibrium.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import Equilibrium.
Open Scope R_scope.

(* The momentum-free equilibrium norm ||w*||^4. *)
Definition norm4_no_momentum (eta lam sigma2 : R) : R := eta * sigma2 / (lam * (2 - eta * lam)).

Definition eq_eta : R := 1.
Definition eq_lam : R := 1.
Definition eq_gamma : R := / 2.
Definition eq_sigma2 : R := 1.

(* Main theorem: the momentum-free norm is not a fixed point on the instance. *)
Theorem equilibrium_no_momentum_refuted :
  ~ (forall eta lam gamma sigma2 : R,
       0 < eta -> 0 < lam -> 0 < gamma -> gamma < 1 -> 0 < sigma2 -> eta * lam < 2 ->
       let A := sqrt (norm4_no_momentum eta lam sigma2) in
       let B := - lam * A / (1 + gamma) in
       let C := 2 * lam * A / (eta * (1 + gamma)) in
       mmap eta lam gamma sigma2 A B C = (A, B, C)).
Proof.
  intro Hclaim.
  pose proof (Hclaim eq_eta eq_lam eq_gamma eq_sigma2
                ltac:(unfold eq_eta; lra) ltac:(unfold eq_lam; lra)
                ltac:(unfold eq_gamma; lra) ltac:(unfold eq_gamma; lra)
                ltac:(unfold eq_sigma2; lra) ltac:(unfold eq_eta, eq_lam; lra)) as H.
  cbv zeta in H.
  assert (HA : sqrt (norm4_no_momentum eq_eta eq_lam eq_sigma2) = 1).
  { unfold norm4_no_momentum, eq_eta, eq_lam, eq_sigma2.
    replace (1 * 1 / (1 * (2 - 1 * 1))) with 1 by field. exact sqrt_1. }
  rewrite HA in H.
  assert (HB : - eq_lam * 1 / (1 + eq_gamma) = - (2 / 3))
    by (unfold eq_lam, eq_gamma; field).
  assert (HC : 2 * eq_lam * 1 / (eq_eta * (1 + eq_gamma)) = 4 / 3)
    by (unfold eq_eta, eq_lam, eq_gamma; field).
  rewrite HB, HC in H.
  unfold mmap, Cnext in H.
  assert (H3 : eq_gamma ^ 2 * (4 / 3) + eq_lam ^ 2 * 1 + 2 * eq_gamma * eq_lam * - (2 / 3)
               + eq_sigma2 / 1 = 4 / 3)
    by (injection H as _ _ H3; exact H3).
  unfold eq_gamma, eq_lam, eq_sigma2 in H3. field_simplify in H3. lra.
Qed.

(* The same instance has the fixed point with the right norm. *)
Lemma equilibrium_instance :
  mmap eq_eta eq_lam eq_gamma eq_sigma2
       (A_star eq_eta eq_lam eq_gamma eq_sigma2) (B_star eq_eta eq_lam eq_gamma eq_sigma2)
       (C_star eq_eta eq_lam eq_gamma eq_sigma2)
  = (A_star eq_eta eq_lam eq_gamma eq_sigma2, B_star eq_eta eq_lam eq_gamma eq_sigma2,
     C_star eq_eta eq_lam eq_gamma eq_sigma2).
Proof.
  unfold eq_eta, eq_lam, eq_gamma, eq_sigma2.
  apply fixed_point; lra.
Qed.
