(* negative/WrongReverseSign.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It states the necessity half of ReverseMap.v (the converse of the general
   theorem of Li & Arora, ICLR 2020) with the wrong sign in the existence
   condition: D_t = 1 + eta~_t c_t k_t instead of 1 - eta~_t c_t k_t.  The
   proof script is the one that succeeds for the right sign;
   proofs/coq_check.py checks that coqc rejects this file inside
   [wrong_reverse_condition] and that the marked line, once fixed, compiles.
   Corresponding SymPy module: proofs/reverse_map.py. *)

From Coq Require Import Reals Lra.
Open Scope R_scope.

Definition D_formula (etat_t c_t k_t : R) : R := 1 + etat_t * c_t * k_t. (* FIX: 1 - etat_t * c_t * k_t. *)

Theorem wrong_reverse_condition (etat_t eta_t c_t k_t : R) :
  0 < eta_t -> 0 < c_t -> 0 < c_t + eta_t * k_t ->
  etat_t = eta_t / (c_t * (c_t + eta_t * k_t)) ->
  D_formula etat_t c_t k_t = c_t / (c_t + eta_t * k_t).
Proof.
  intros He Hc Hn ->. unfold D_formula.
  field. split; lra.
Qed.
