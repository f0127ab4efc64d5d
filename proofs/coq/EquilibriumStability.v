(* EquilibriumStability.v -- linear stability of the second-moment steady state
   of Equilibrium.v (SGD with momentum and weight decay on a scale-invariant
   weight, the equilibrium behind the exponential-LR equivalence of
   Li & Arora, ICLR 2020, in the project's own derivation).

   Equilibrium.v's [jacobian_charpoly]: at the fixed point the Jacobian J of
   the closed moment map has det (J - x Id) = -(x - gamma^2)(x^2 - b x + gamma),
   b = (1+gamma) - 4 eta lambda + 2 eta^2 lambda^2 / (1+gamma), for every REAL x.
   Proved here, for eta, lambda, sigma^2 > 0, 0 <= gamma < 1 and
   eta lambda < 2 (1 + gamma) (Equilibrium.v's range):
   - [charpoly_complex]: the same identity for every COMPLEX z (Coquelicot's
     C, the determinant of J - z Id computed in C), so the eigenvalues of J
     (real or complex) are exactly gamma^2 and the roots of x^2 - b x + gamma;
   - [jury_conditions]: the Jury / Schur-Cohn conditions of that quadratic,
     |gamma| < 1 and |b| < 1 + gamma, hold iff eta lambda <> 1 + gamma;
   - [quadratic_roots_in_disk]: for real b, g with 0 <= g < 1 and
     |b| < 1 + g, every complex root of z^2 - b z + g has |z| < 1;
   - [equilibrium_linearly_stable] (main theorem): if moreover
     eta lambda <> 1 + gamma, every complex eigenvalue z of J
     (det (J - z Id) = 0 in C) has |z| < 1;
   - [jacobian_marginal]: at eta lambda = 1 + gamma, -1 is an eigenvalue
     (det (J + Id) = 0), so the strict bound fails exactly there and the
     stated range alone does not give |z| < 1.
   Not proved: that |z| < 1 implies convergence of the nonlinear map near the
   fixed point (the standard linearisation theorem is not formalised here).

   Main theorems: [equilibrium_linearly_stable], [jacobian_marginal];
   also [charpoly_complex], [jury_conditions], [quadratic_roots_in_disk].
   Corresponding SymPy module: proofs/equilibrium.py. *)

From Coq Require Import Reals Lra.
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Equilibrium.
Open Scope R_scope.

(* ------------------------------------------------------------------ *)
(* Complex arithmetic helpers. *)

Definition det3C (a b c d e f g h i : C) : C :=
  Cminus (Cplus (Cmult a (Cminus (Cmult e i) (Cmult f h)))
                (Copp (Cmult b (Cminus (Cmult d i) (Cmult f g)))))
         (Copp (Cmult c (Cminus (Cmult d h) (Cmult e g)))).

Lemma det3C_expand (a b c d e f g h i : R) (z : C) :
  det3C (Cminus (RtoC a) z) (RtoC b) (RtoC c) (RtoC d) (Cminus (RtoC e) z) (RtoC f)
        (RtoC g) (RtoC h) (Cminus (RtoC i) z)
  = Cminus (Cplus (Cminus (RtoC (det3 a b c d e f g h i))
                          (Cmult (RtoC ((e * i - f * h) + (a * i - c * g) + (a * e - b * d))) z))
                  (Cmult (RtoC (a + e + i)) (Cmult z z)))
           (Cmult z (Cmult z z)).
Proof.
  unfold det3C, det3.
  repeat (rewrite RtoC_plus || rewrite RtoC_minus || rewrite RtoC_mult || rewrite RtoC_opp).
  ring.
Qed.

Lemma det3_expand (a b c d e f g h i x : R) :
  det3 (a - x) b c d (e - x) f g h (i - x)
  = det3 a b c d e f g h i - ((e * i - f * h) + (a * i - c * g) + (a * e - b * d)) * x
    + (a + e + i) * (x * x) - x * (x * x).
Proof. unfold det3. ring. Qed.

Lemma Cmult_zero (u v : C) : Cmult u v = RtoC 0 -> u = RtoC 0 \/ v = RtoC 0.
Proof.
  intro H. destruct (Ceq_dec u (RtoC 0)) as [Hu | Hu]; [left; exact Hu | right].
  replace v with (Cmult (Cinv u) (Cmult u v)) by (field; exact Hu).
  rewrite H. ring.
Qed.

Lemma sqrt_lt_one (s : R) : 0 <= s < 1 -> sqrt s < 1.
Proof. intros [H0 H1]. rewrite <- sqrt_1. apply sqrt_lt_1; lra. Qed.

(* Jury / Schur-Cohn for a real monic quadratic: both roots in the open unit
   disk. *)
Theorem quadratic_roots_in_disk (b g : R) (z : C) :
  0 <= g < 1 -> - (1 + g) < b < 1 + g ->
  Cplus (Cminus (Cmult z z) (Cmult (RtoC b) z)) (RtoC g) = RtoC 0 -> Cmod z < 1.
Proof.
  intros [Hg0 Hg1] [Hb0 Hb1] H. destruct z as [x y].
  unfold Cmod. cbn [fst snd].
  unfold Cplus, Cminus, Cmult, Copp, RtoC in H. cbn [fst snd] in H.
  injection H as Hre Him.
  apply sqrt_lt_one.
  assert (Hy : y * (2 * x - b) = 0) by lra.
  destruct (Rmult_integral _ _ Hy) as [-> | Hx].
  - (* a real root: x^2 - b x + g = 0 forces |x| < 1 *)
    assert (Hre' : x * x - b * x + g = 0) by lra.
    split; [nra |].
    assert (x < 1).
    { destruct (Rlt_or_le x 1) as [? | Hx1]; [assumption | exfalso].
      assert (0 <= (x - 1) * (x + 1 - b)) by (apply Rmult_le_pos; lra). nra. }
    assert (- 1 < x).
    { destruct (Rlt_or_le (-1) x) as [? | Hx1]; [assumption | exfalso].
      assert (0 <= (- 1 - x) * (- x + 1 + b)) by (apply Rmult_le_pos; lra). nra. }
    nra.
  - (* a complex pair: x = b/2 and x^2 + y^2 = g *)
    assert (Hxb : b = 2 * x) by lra. subst b.
    split; nra.
Qed.

(* ------------------------------------------------------------------ *)

Section Stability.

Variables eta lam gamma sigma2 : R.
Hypothesis eta_pos : 0 < eta.
Hypothesis lam_pos : 0 < lam.
Hypothesis gamma_nonneg : 0 <= gamma.
Hypothesis gamma_lt_1 : gamma < 1.
Hypothesis sigma2_pos : 0 < sigma2.
Hypothesis step_small : eta * lam < 2 * (1 + gamma).

Let b := b_quad eta lam gamma.
Let JA := J11 eta lam sigma2 (A_star eta lam gamma sigma2).
Let JD := J21 eta lam sigma2 (A_star eta lam gamma sigma2).
Let JG := J31 lam sigma2 (A_star eta lam gamma sigma2).

(* The Jury conditions of x^2 - b x + gamma hold exactly off eta lambda = 1 + gamma. *)
Theorem jury_conditions :
  (Rabs gamma < 1 /\ Rabs b < 1 + gamma) <-> eta * lam <> 1 + gamma.
Proof.
  assert (Hlo : b + (1 + gamma) = 2 * (1 + gamma - eta * lam) ^ 2 / (1 + gamma))
    by (unfold b, b_quad; field; lra).
  assert (Hhi : b - (1 + gamma) = 2 * (eta * lam) * (eta * lam - 2 * (1 + gamma)) / (1 + gamma))
    by (unfold b, b_quad; field; lra).
  assert (Hel : 0 < eta * lam) by (apply Rmult_lt_0_compat; lra).
  assert (Hup : b < 1 + gamma).
  { assert (2 * (eta * lam) * (eta * lam - 2 * (1 + gamma)) / (1 + gamma) < 0).
    { assert (2 * (eta * lam) * (eta * lam - 2 * (1 + gamma)) < 0) by nra.
      assert (0 < / (1 + gamma)) by (apply Rinv_0_lt_compat; lra).
      unfold Rdiv. nra. }
    lra. }
  split.
  - intros [_ Hb] Heq.
    rewrite Heq in Hlo.
    replace (2 * (1 + gamma - (1 + gamma)) ^ 2 / (1 + gamma)) with 0 in Hlo by (field; lra).
    apply Rabs_def2 in Hb. lra.
  - intro Hne. split.
    + rewrite Rabs_pos_eq by lra. lra.
    + apply Rabs_def1; [exact Hup |].
      assert (0 < 2 * (1 + gamma - eta * lam) ^ 2 / (1 + gamma)).
      { apply Rdiv_lt_0_compat; [| lra].
        apply Rmult_lt_0_compat; [lra |].
        assert (1 + gamma - eta * lam <> 0) by lra.
        simpl. rewrite Rmult_1_r. nra. }
      lra.
Qed.

(* The characteristic polynomial's coefficients, read off the real identity
   [jacobian_charpoly] at x = 0, 1, -1. *)
Lemma charpoly_coeffs :
  det3 JA (J12 eta lam gamma) (J13 eta gamma) JD (J22 eta lam gamma) (J23 eta gamma)
       JG (J32 lam gamma) (J33 gamma) = gamma ^ 3 /\
  (J22 eta lam gamma * J33 gamma - J23 eta gamma * J32 lam gamma)
  + (JA * J33 gamma - J13 eta gamma * JG) + (JA * J22 eta lam gamma - J12 eta lam gamma * JD)
  = gamma + b * gamma ^ 2 /\
  JA + J22 eta lam gamma + J33 gamma = b + gamma ^ 2.
Proof.
  assert (HP : forall x,
    det3 (JA - x) (J12 eta lam gamma) (J13 eta gamma) JD (J22 eta lam gamma - x)
         (J23 eta gamma) JG (J32 lam gamma) (J33 gamma - x)
    = - (x - gamma ^ 2) * (x ^ 2 - b * x + gamma))
    by (intro x; apply jacobian_charpoly; assumption).
  pose proof (HP 0) as H0. pose proof (HP 1) as H1. pose proof (HP (-1)) as H2.
  rewrite det3_expand in H0, H1, H2.
  set (D := det3 JA (J12 eta lam gamma) (J13 eta gamma) JD (J22 eta lam gamma)
                 (J23 eta gamma) JG (J32 lam gamma) (J33 gamma)) in *.
  set (m2 := (J22 eta lam gamma * J33 gamma - J23 eta gamma * J32 lam gamma)
             + (JA * J33 gamma - J13 eta gamma * JG)
             + (JA * J22 eta lam gamma - J12 eta lam gamma * JD)) in *.
  set (tr := JA + J22 eta lam gamma + J33 gamma) in *.
  clearbody D m2 tr. ring_simplify in H0. ring_simplify in H1. ring_simplify in H2.
  repeat split; nra.
Qed.

(* The determinant of J - z Id in C, for every complex z. *)
Theorem charpoly_complex (z : C) :
  det3C (Cminus (RtoC JA) z) (RtoC (J12 eta lam gamma)) (RtoC (J13 eta gamma))
        (RtoC JD) (Cminus (RtoC (J22 eta lam gamma)) z) (RtoC (J23 eta gamma))
        (RtoC JG) (RtoC (J32 lam gamma)) (Cminus (RtoC (J33 gamma)) z)
  = Copp (Cmult (Cminus z (RtoC (gamma ^ 2)))
                (Cplus (Cminus (Cmult z z) (Cmult (RtoC b) z)) (RtoC gamma))).
Proof.
  rewrite det3C_expand.
  destruct charpoly_coeffs as [-> [-> ->]].
  replace (gamma ^ 3) with (gamma * gamma * gamma) by ring.
  replace (gamma ^ 2) with (gamma * gamma) by ring.
  repeat (rewrite RtoC_plus || rewrite RtoC_minus || rewrite RtoC_mult || rewrite RtoC_opp).
  ring.
Qed.

(* Main theorem: off eta lambda = 1 + gamma every eigenvalue of J, real or
   complex, lies in the open unit disk. *)
Theorem equilibrium_linearly_stable (z : C) :
  eta * lam <> 1 + gamma ->
  det3C (Cminus (RtoC JA) z) (RtoC (J12 eta lam gamma)) (RtoC (J13 eta gamma))
        (RtoC JD) (Cminus (RtoC (J22 eta lam gamma)) z) (RtoC (J23 eta gamma))
        (RtoC JG) (RtoC (J32 lam gamma)) (Cminus (RtoC (J33 gamma)) z) = RtoC 0 ->
  Cmod z < 1.
Proof.
  intros Hne H. rewrite charpoly_complex in H.
  set (X := Cmult (Cminus z (RtoC (gamma ^ 2)))
                  (Cplus (Cminus (Cmult z z) (Cmult (RtoC b) z)) (RtoC gamma))) in H.
  assert (HX : X = RtoC 0).
  { replace X with (Copp (Copp X)) by ring. rewrite H. ring. }
  destruct (Cmult_zero _ _ HX) as [Hz | Hq].
  - assert (z = RtoC (gamma ^ 2)).
    { replace z with (Cplus (Cminus z (RtoC (gamma ^ 2))) (RtoC (gamma ^ 2))) by ring.
      rewrite Hz. ring. }
    subst z. rewrite Cmod_R, Rabs_pos_eq by (apply pow_le; lra). nra.
  - destruct (proj2 (jury_conditions) Hne) as [_ Hb].
    apply Rabs_def2 in Hb.
    apply (quadratic_roots_in_disk b gamma z); [lra | lra | exact Hq].
Qed.

(* At eta lambda = 1 + gamma, -1 is an eigenvalue of J: det (J + Id) = 0. *)
Theorem jacobian_marginal :
  eta * lam = 1 + gamma ->
  det3 (JA - (-1)) (J12 eta lam gamma) (J13 eta gamma) JD (J22 eta lam gamma - (-1))
       (J23 eta gamma) JG (J32 lam gamma) (J33 gamma - (-1)) = 0.
Proof.
  intro Heq.
  assert (HP : det3 (JA - (-1)) (J12 eta lam gamma) (J13 eta gamma) JD
                    (J22 eta lam gamma - (-1)) (J23 eta gamma) JG (J32 lam gamma)
                    (J33 gamma - (-1))
               = - ((-1) - gamma ^ 2) * ((-1) ^ 2 - b * (-1) + gamma))
    by (apply jacobian_charpoly; assumption).
  rewrite HP.
  assert (Hb : b = - (1 + gamma)).
  { unfold b, b_quad.
    replace (2 * eta ^ 2 * lam ^ 2) with (2 * (eta * lam) ^ 2) by ring.
    replace (4 * eta * lam) with (4 * (eta * lam)) by ring.
    rewrite Heq. field. lra. }
  rewrite Hb. ring.
Qed.

End Stability.
