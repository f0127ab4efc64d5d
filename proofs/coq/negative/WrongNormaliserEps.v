(* negative/WrongNormaliserEps.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the normaliser result of Normaliser.v (exact eval-mode outputs
   for the exponential-LR runs of Li & Arora, ICLR 2020) with eps scaled by
   m instead of m^2.  The proof script is the one that succeeds for m^2;
   proofs/coq_check.py checks that coqc rejects this file inside
   [wrong_normaliser_eps] and that the marked line, once fixed, compiles.
   Corresponding SymPy module: proofs/normaliser_eps.py. *)

From Coq Require Import Reals Lra Lia FunctionalExtensionality.
From ExpLR Require Import Normaliser.
Open Scope R_scope.

Definition eps_power : nat := 1. (* FIX: 2. *)

Theorem wrong_normaliser_eps (eps m : R) (n : nat) (x : nat -> R) (j : nat) :
  0 < m -> 0 < var n x + eps ->
  normalise (eps * m ^ eps_power) n (fun i => m * x i) j = normalise eps n x j.
Proof.
  intros Hm Hv. unfold normalise, eps_power.
  rewrite mean_scale, var_scale.
  replace (m ^ 2 * var n x + eps * m ^ 2) with (m ^ 2 * (var n x + eps)) by ring.
  rewrite sqrt_scale_sq by exact Hm.
  pose proof (sqrt_lt_R0 _ Hv).
  field. split; lra.
Qed.
