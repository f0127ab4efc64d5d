(* RefuteReverseMap.v -- the necessity half of the reverse map
   (ReverseMap.v, [reverse_map_necessary]; the converse direction of the
   general theorem of Li & Arora, ICLR 2020) fails with the wrong sign in the
   existence condition: the negative control's wrong claim,
   D_t = 1 + eta~_t c_t k_t = c_t / c_{t+1} (instead of 1 - eta~_t c_t k_t),
   is false, not merely unproven ([reverse_sign_refuted]).  The result has no
   gradient map; the witness
   is a concrete choice of reals satisfying every hypothesis, on which the
   right sign holds.

   Instance: eta_t = c_t = k_t = 1, so c_{t+1} = c_t + eta_t k_t = 2 and
   eta~_t = eta_t / (c_t c_{t+1}) = 1/2.  Then c_t / c_{t+1} = 1/2 =
   1 - eta~_t c_t k_t, while 1 + eta~_t c_t k_t = 3/2.

   Main theorem: [reverse_sign_refuted]; the right statement on the same
   instance: [reverse_sign_instance].
   Corresponding SymPy module: proofs/reverse_map.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import ReverseMap.
Open Scope R_scope.

Definition rv_eta : R := 1.
Definition rv_c : R := 1.
Definition rv_k : R := 1.
Definition rv_etat : R := rv_eta / (rv_c * (rv_c + rv_eta * rv_k)).

(* Main theorem: the condition with the wrong sign fails on the instance. *)
Theorem reverse_sign_refuted :
  ~ (forall etat_t eta_t c_t k_t : R,
       0 < eta_t -> 0 < c_t -> 0 < c_t + eta_t * k_t ->
       etat_t = eta_t / (c_t * (c_t + eta_t * k_t)) ->
       1 + etat_t * c_t * k_t = c_t / (c_t + eta_t * k_t)).
Proof.
  intro Hclaim.
  assert (H := Hclaim rv_etat rv_eta rv_c rv_k).
  unfold rv_etat, rv_eta, rv_c, rv_k in H.
  assert (E : 1 + 1 / (1 * (1 + 1 * 1)) * 1 * 1 = 1 / (1 + 1 * 1) -> False)
    by (intro Hx; field_simplify in Hx; lra).
  apply E, H; lra.
Qed.

(* The same instance satisfies the condition with the right sign. *)
Lemma reverse_sign_instance :
  1 - rv_etat * rv_c * rv_k = rv_c / (rv_c + rv_eta * rv_k)
  /\ 0 < 1 - rv_etat * rv_c * rv_k.
Proof.
  apply reverse_map_necessary; [unfold rv_eta; lra | unfold rv_c; lra
                               | unfold rv_c, rv_eta, rv_k; lra | reflexivity].
Qed.
