(* negative/WrongEquilibriumNoMomentum.v -- NEGATIVE CONTROL: this file must
   be REJECTED by coqc.

   It claims that the equilibrium norm without momentum,
       ||w*||^4 = eta sigma^2 / (lambda (2 - eta lambda)),
   is, with B* = -lambda A*/(1+gamma) and C* = 2 lambda A*/(eta (1+gamma)), a
   fixed point of the moment map of Equilibrium.v for a run with momentum
   gamma > 0 (the steady state of SGD with momentum and weight decay on a
   scale-invariant weight, behind the exponential-LR equivalence of
   Li & Arora, ICLR 2020).  The proof script is the one that succeeds for the
   formula with momentum; proofs/coq_check.py checks that coqc rejects this
   file inside [wrong_no_momentum_fixed_point] and that the marked line, once
   fixed, compiles.
   Corresponding SymPy module: proofs/equilibrium.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import Equilibrium.
Open Scope R_scope.

Definition norm4_claim (eta lam gamma sigma2 : R) : R := eta * sigma2 * 1 / (lam * 1 * (2 - eta * lam)). (* FIX: eta * sigma2 * (1 + gamma) / (lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam)). *)

Theorem wrong_no_momentum_fixed_point (eta lam gamma sigma2 : R) :
  0 < eta -> 0 < lam -> 0 < gamma -> gamma < 1 -> 0 < sigma2 -> eta * lam < 2 ->
  let A := sqrt (norm4_claim eta lam gamma sigma2) in
  let B := - lam * A / (1 + gamma) in
  let C := 2 * lam * A / (eta * (1 + gamma)) in
  mmap eta lam gamma sigma2 A B C = (A, B, C).
Proof.
  intros Heta Hlam Hg0 Hg1 Hs2 Hsmall A B C.
  assert (Hpos : 0 < norm4_claim eta lam gamma sigma2).
  { unfold norm4_claim. apply Rdiv_lt_0_compat.
    - apply Rmult_lt_0_compat; [apply Rmult_lt_0_compat|]; lra.
    - apply Rmult_lt_0_compat; [apply Rmult_lt_0_compat|]; lra. }
  assert (HA : 0 < A) by (apply sqrt_lt_R0; exact Hpos).
  assert (Hsq : A * A = norm4_claim eta lam gamma sigma2) by (apply sqrt_sqrt; lra).
  unfold B, C. clearbody A.
  assert (Hs : sigma2 = A * A * (lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam))
                        / (eta * (1 + gamma))).
  { rewrite Hsq. unfold norm4_claim. field. repeat split; nra. }
  unfold mmap, Anext, Bnext, Cnext. rewrite Hs.
  f_equal; [f_equal|]; field; repeat split; lra.
Qed.
