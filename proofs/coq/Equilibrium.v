(* Equilibrium.v -- the second-moment steady state of PyTorch's SGD with
   momentum and weight decay on a scale-invariant weight (the equilibrium
   behind the exponential-LR equivalence of Li & Arora, ICLR 2020, in the
   project's own derivation).

   Run  v_{t+1} = gamma v_t + g_t + lambda w_t,  w_{t+1} = w_t - eta v_{t+1}
   (Momentum.v's [sgd_step]) and write A = E<w_t,w_t>, B = E<w_t,v_t>,
   C = E<v_t,v_t>, Gg = E<g_t,g_t>.

   Part 1 (derived, not assumed): over an abstract symmetric bilinear form
   [ip] on vectors I -> R and an abstract linear expectation [Ex] over a
   sample space, with <g_t, w_t> = 0 for every sample (scale invariance) and
   E<g_t, v_t> = 0 (zero-mean noise), one step gives exactly
       C' = gamma^2 C + lambda^2 A + 2 gamma lambda B + Gg,
       B' = gamma B + lambda A - eta C',
       A' = A - 2 eta (gamma B + lambda A) + eta^2 C',
       E<w_t, w_{t+1}> = A - eta (gamma B + lambda A)      [moment_step];
   with the closure E<g,g> = sigma^2 / A this is the map [mmap] of Part 2
   [moment_map_derived].
   Part 2 (real algebra): closing the map with Gg = sigma^2 / A, for
   eta, lambda, sigma^2 > 0, 0 <= gamma < 1, eta lambda < 2 (1 + gamma):
       A*^2 = eta sigma^2 (1+gamma) / (lambda (1-gamma) (2(1+gamma) - eta lambda)),
       B* = -lambda A* / (1+gamma),   C* = 2 lambda A* / (eta (1+gamma))
   is a fixed point with A* > 0 and B*^2 < A* C*, the only one with A > 0,
   and cos Delta* = E<w_t,w_{t+1}> / (sqrt A sqrt A') = 1 - eta lambda/(1+gamma)
   there [equilibrium_steady_state].  The Jacobian of the closed map
   (partial derivatives checked with Coquelicot's [is_derive]) has at the
   fixed point the characteristic polynomial
       det (J - x Id) = -(x - gamma^2) (x^2 - b x + gamma),
       b = (1+gamma) - 4 eta lambda + 2 eta^2 lambda^2 / (1+gamma)
   [jacobian_charpoly].

   Main theorem: [equilibrium_steady_state]; also [moment_step],
   [moment_map_derived], [jacobian_entries], [jacobian_charpoly].
   Corresponding SymPy module: proofs/equilibrium.py. *)

From Coq Require Import Reals Lra FunctionalExtensionality.
From Coquelicot Require Import Coquelicot.
From ExpLR Require Import Vec Momentum.
Open Scope R_scope.

(* ------------------------------------------------------------------ *)
(* The moment map (A, B, C, E<g,g>) |-> (A', B', C'); every map takes the
   same parameters (eta lam gamma), [Cnext] does not use eta. *)

Definition Cnext (eta lam gamma A B C Gg : R) : R :=
  gamma ^ 2 * C + lam ^ 2 * A + 2 * gamma * lam * B + Gg.
Definition Bnext (eta lam gamma A B C Gg : R) : R :=
  gamma * B + lam * A - eta * Cnext eta lam gamma A B C Gg.
Definition Anext (eta lam gamma A B C Gg : R) : R :=
  A - 2 * eta * (gamma * B + lam * A) + eta ^ 2 * Cnext eta lam gamma A B C Gg.
(* E<w_t, w_{t+1}> *)
Definition Wcross (eta lam gamma A B : R) : R := A - eta * (gamma * B + lam * A).

(* ------------------------------------------------------------------ *)
(* Part 1: the moment map from the vector recurrence. *)

Section OneStep.

Variable I : Type.
Variable ip : vec I -> vec I -> R.               (* inner product *)
Hypothesis ip_sym : forall x y, ip x y = ip y x.
Hypothesis ip_lin : forall a b x y z,
  ip (fun i => a * x i + b * y i) z = a * ip x z + b * ip y z.

Definition lc3 (a b c : R) (x y z : vec I) : vec I := fun i => a * x i + b * y i + c * z i.

Lemma ip_lc3_l a b c x y z u :
  ip (lc3 a b c x y z) u = a * ip x u + b * ip y u + c * ip z u.
Proof.
  unfold lc3.
  replace (fun i => a * x i + b * y i + c * z i)
    with (fun i => 1 * (fun j => a * x j + b * y j) i + c * z i)
    by (apply functional_extensionality; intro i; ring).
  rewrite ip_lin, ip_lin. ring.
Qed.

Lemma ip_lc3 a b c a' b' c' x y z :
  ip (lc3 a b c x y z) (lc3 a' b' c' x y z)
  = a * a' * ip x x + b * b' * ip y y + c * c' * ip z z
    + (a * b' + b * a') * ip x y + (a * c' + c * a') * ip x z + (b * c' + c * b') * ip y z.
Proof.
  rewrite ip_lc3_l.
  rewrite (ip_sym x), (ip_sym y), (ip_sym z), !ip_lc3_l.
  rewrite (ip_sym y x), (ip_sym z x), (ip_sym z y). ring.
Qed.

(* One SGD step as linear combinations of w_t, v_t, g_t. *)
Lemma sgd_step_lc3 (g : vec I -> vec I) (eta lam gamma : R) (w v : vec I) :
  sgd_step g eta lam gamma (w, v)
  = (lc3 (1 - eta * lam) (- eta * gamma) (- eta) w v (g w), lc3 lam gamma 1 w v (g w)).
Proof.
  unfold sgd_step, lc3; simpl. f_equal; apply functional_extensionality; intro i; ring.
Qed.

Variable Omega : Type.                           (* sample space *)
Variable Ex : (Omega -> R) -> R.                 (* expectation: only linearity is used *)
Hypothesis Ex_lin : forall a b f h,
  Ex (fun o => a * f o + b * h o) = a * Ex f + b * Ex h.

Lemma Ex_lin4 a1 a2 a3 a4 f1 f2 f3 f4 :
  Ex (fun o => a1 * f1 o + (a2 * f2 o + (a3 * f3 o + a4 * f4 o)))
  = a1 * Ex f1 + a2 * Ex f2 + a3 * Ex f3 + a4 * Ex f4.
Proof.
  replace (fun o => a1 * f1 o + (a2 * f2 o + (a3 * f3 o + a4 * f4 o)))
    with (fun o => a1 * f1 o + 1 * (fun o' => a2 * f2 o' + 1 * (fun o'' =>
            a3 * f3 o'' + a4 * f4 o'') o') o)
    by (apply functional_extensionality; intro o; ring).
  rewrite Ex_lin, Ex_lin, Ex_lin. ring.
Qed.

Variables eta lam gamma : R.
Variable Gs : Omega -> vec I -> vec I.           (* per-sample gradient map *)
Variables w v : Omega -> vec I.                  (* the state (w_t, v_t) *)
Hypothesis grad_orth : forall o x, ip (Gs o x) x = 0.          (* scale invariance *)
Hypothesis noise_mean : Ex (fun o => ip (Gs o (w o)) (v o)) = 0.  (* zero-mean noise *)

Let A := Ex (fun o => ip (w o) (w o)).
Let B := Ex (fun o => ip (w o) (v o)).
Let C := Ex (fun o => ip (v o) (v o)).
Let Gg := Ex (fun o => ip (Gs o (w o)) (Gs o (w o))).
Let s1 (o : Omega) := sgd_step (Gs o) eta lam gamma (w o, v o).

(* Expectation of a quadratic form in (w_t, v_t, g_t) whose <w,g> term is
   already zero: the <v,g> term drops by the zero-mean noise. *)
Lemma Ex_expand (a b c d e f : R) :
  Ex (fun o => a * ip (w o) (w o) + b * ip (v o) (v o) + c * ip (Gs o (w o)) (Gs o (w o))
               + d * ip (w o) (v o) + e * 0 + f * ip (v o) (Gs o (w o)))
  = a * A + b * C + c * Gg + d * B.
Proof.
  replace (fun o => a * ip (w o) (w o) + b * ip (v o) (v o)
                    + c * ip (Gs o (w o)) (Gs o (w o)) + d * ip (w o) (v o)
                    + e * 0 + f * ip (v o) (Gs o (w o)))
    with (fun o => 1 * (fun o' => a * ip (w o') (w o') + (b * ip (v o') (v o')
                    + (c * ip (Gs o' (w o')) (Gs o' (w o')) + d * ip (w o') (v o')))) o
                   + f * (fun o' => ip (Gs o' (w o')) (v o')) o)
    by (apply functional_extensionality; intro o; rewrite (ip_sym (v o) (Gs o (w o))); ring).
  rewrite Ex_lin, Ex_lin4, noise_mean. unfold A, B, C, Gg. ring.
Qed.

Lemma ip_lc3_r a b c x y z :
  ip x (lc3 a b c x y z) = a * ip x x + b * ip x y + c * ip x z.
Proof. rewrite ip_sym, ip_lc3_l, (ip_sym y), (ip_sym z). ring. Qed.

(* E<p, q> for p, q linear combinations of w_t, v_t, g_t. *)
Lemma Ex_ip_lc3 (a b c a' b' c' : R) :
  Ex (fun o => ip (lc3 a b c (w o) (v o) (Gs o (w o))) (lc3 a' b' c' (w o) (v o) (Gs o (w o))))
  = a * a' * A + b * b' * C + c * c' * Gg + (a * b' + b * a') * B.
Proof.
  rewrite <- (Ex_expand (a * a') (b * b') (c * c') (a * b' + b * a') (a * c' + c * a')
                        (b * c' + c * b')).
  f_equal. apply functional_extensionality; intro o.
  rewrite ip_lc3, (ip_sym (w o) (Gs o (w o))), grad_orth. ring.
Qed.

Lemma s1_lc3 (o : Omega) :
  s1 o = (lc3 (1 - eta * lam) (- eta * gamma) (- eta) (w o) (v o) (Gs o (w o)),
          lc3 lam gamma 1 (w o) (v o) (Gs o (w o))).
Proof. unfold s1. apply sgd_step_lc3. Qed.

Theorem moment_step :
  Ex (fun o => ip (fst (s1 o)) (fst (s1 o))) = Anext eta lam gamma A B C Gg
  /\ Ex (fun o => ip (fst (s1 o)) (snd (s1 o))) = Bnext eta lam gamma A B C Gg
  /\ Ex (fun o => ip (snd (s1 o)) (snd (s1 o))) = Cnext eta lam gamma A B C Gg
  /\ Ex (fun o => ip (w o) (fst (s1 o))) = Wcross eta lam gamma A B.
Proof.
  set (wl := fun a b c (o : Omega) => lc3 a b c (w o) (v o) (Gs o (w o))).
  assert (Hw : forall o, fst (s1 o) = wl (1 - eta * lam) (- eta * gamma) (- eta) o)
    by (intro o; rewrite s1_lc3; reflexivity).
  assert (Hv : forall o, snd (s1 o) = wl lam gamma 1 o)
    by (intro o; rewrite s1_lc3; reflexivity).
  assert (H0 : forall o, w o = wl 1 0 0 o)
    by (intro o; unfold wl, lc3; apply functional_extensionality; intro i; ring).
  repeat split.
  - replace (fun o => ip (fst (s1 o)) (fst (s1 o)))
      with (fun o => ip (wl (1 - eta * lam) (- eta * gamma) (- eta) o)
                        (wl (1 - eta * lam) (- eta * gamma) (- eta) o))
      by (apply functional_extensionality; intro o; rewrite Hw; reflexivity).
    unfold wl. rewrite Ex_ip_lc3. unfold Anext, Cnext. ring.
  - replace (fun o => ip (fst (s1 o)) (snd (s1 o)))
      with (fun o => ip (wl (1 - eta * lam) (- eta * gamma) (- eta) o) (wl lam gamma 1 o))
      by (apply functional_extensionality; intro o; rewrite Hw, Hv; reflexivity).
    unfold wl. rewrite Ex_ip_lc3. unfold Bnext, Cnext. ring.
  - replace (fun o => ip (snd (s1 o)) (snd (s1 o)))
      with (fun o => ip (wl lam gamma 1 o) (wl lam gamma 1 o))
      by (apply functional_extensionality; intro o; rewrite Hv; reflexivity).
    unfold wl. rewrite Ex_ip_lc3. unfold Cnext. ring.
  - replace (fun o => ip (w o) (fst (s1 o)))
      with (fun o => ip (wl 1 0 0 o) (wl (1 - eta * lam) (- eta * gamma) (- eta) o))
      by (apply functional_extensionality; intro o; rewrite Hw, <- H0; reflexivity).
    unfold wl. rewrite Ex_ip_lc3. unfold Wcross. ring.
Qed.

End OneStep.
(* ------------------------------------------------------------------ *)
(* Part 2: the closed moment map (E<g,g> = sigma^2 / A), its fixed point,
   the angular update, the linearisation. *)

(* Derivatives of p a + q / a + r and p x + r (Coquelicot's [is_derive]). *)
Lemma deriv_affine_inv (p q r A : R) : A <> 0 ->
  is_derive (fun a => p * a + q * / a + r) A (p - q / A ^ 2).
Proof.
  intro HA.
  pose proof (is_derive_plus _ _ A _ _
    (is_derive_plus _ _ A _ _
       (is_derive_scal (fun a : R => a) A p 1 (is_derive_id A))
       (is_derive_scal (fun a : R => / a) A q _
          (is_derive_inv (fun a : R => a) A 1 (is_derive_id A) HA)))
    (is_derive_const r A)) as H.
  replace (p - q / A ^ 2) with (p * 1 + q * (- (1) / A ^ 2) + 0) by (field; exact HA).
  exact H.
Qed.
Lemma deriv_affine (p r x : R) : is_derive (fun b => p * b + r) x p.
Proof.
  pose proof (is_derive_plus _ _ x _ _
       (is_derive_scal (fun a : R => a) x p 1 (is_derive_id x))
    (is_derive_const r x)) as H.
  change (is_derive (fun b : R => p * b + r) x (p * 1 + 0)) in H.
  replace (p * 1 + 0) with p in H by ring. exact H.
Qed.

Section SteadyState.

Variables eta lam gamma sigma2 : R.

Definition mmap (A B C : R) : R * R * R :=
  (Anext eta lam gamma A B C (sigma2 / A), Bnext eta lam gamma A B C (sigma2 / A),
   Cnext eta lam gamma A B C (sigma2 / A)).

(* cos Delta = E<w_t, w_{t+1}> / (sqrt(E|w_t|^2) sqrt(E|w_{t+1}|^2)) *)
Definition cos_delta (A B C : R) : R :=
  Wcross eta lam gamma A B / (sqrt A * sqrt (Anext eta lam gamma A B C (sigma2 / A))).

Definition norm4_star : R :=
  eta * sigma2 * (1 + gamma) / (lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam)).
Definition A_star : R := sqrt norm4_star.
Definition B_star : R := - lam * A_star / (1 + gamma).
Definition C_star : R := 2 * lam * A_star / (eta * (1 + gamma)).

Hypothesis eta_pos : 0 < eta.
Hypothesis lam_pos : 0 < lam.
Hypothesis gamma_nonneg : 0 <= gamma.
Hypothesis gamma_lt_1 : gamma < 1.
Hypothesis sigma2_pos : 0 < sigma2.
Hypothesis step_small : eta * lam < 2 * (1 + gamma).

Lemma norm4_star_pos : 0 < norm4_star.
Proof.
  unfold norm4_star. apply Rdiv_lt_0_compat.
  - apply Rmult_lt_0_compat; [apply Rmult_lt_0_compat|]; lra.
  - apply Rmult_lt_0_compat; [apply Rmult_lt_0_compat|]; lra.
Qed.

Lemma A_star_pos : 0 < A_star.
Proof. unfold A_star. apply sqrt_lt_R0, norm4_star_pos. Qed.

Lemma A_star_sq : A_star * A_star = norm4_star.
Proof. unfold A_star. apply sqrt_sqrt. left. apply norm4_star_pos. Qed.

(* sigma^2 = A*^2 E|g|^2* : the closure at the fixed point. *)
Lemma sigma2_star :
  sigma2 = A_star * A_star * (lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam))
           / (eta * (1 + gamma)).
Proof.
  rewrite A_star_sq. unfold norm4_star. field. repeat split; nra.
Qed.

Theorem fixed_point : mmap A_star B_star C_star = (A_star, B_star, C_star).
Proof.
  pose proof A_star_pos as HA. pose proof sigma2_star as Hs.
  unfold mmap, Anext, Bnext, Cnext, B_star, C_star. rewrite Hs.
  f_equal; [f_equal|]; field; repeat split; lra.
Qed.

Theorem fixed_point_unique (A B C : R) :
  0 < A -> mmap A B C = (A, B, C) -> A = A_star /\ B = B_star /\ C = C_star.
Proof.
  intros HA Hfix. unfold mmap in Hfix.
  injection Hfix as HAn HBn HCn.
  unfold Anext, Bnext in HAn, HBn. rewrite HCn in HAn, HBn.
  assert (HeC : eta * C = 2 * (gamma * B + lam * A)).
  { apply (Rmult_eq_reg_l eta); [|lra]. lra. }
  assert (HB1 : (1 + gamma) * B = - lam * A) by lra.
  assert (HC1 : eta * (1 + gamma) * C = 2 * lam * A).
  { replace (eta * (1 + gamma) * C) with ((1 + gamma) * (eta * C)) by ring.
    rewrite HeC.
    replace ((1 + gamma) * (2 * (gamma * B + lam * A)))
      with (2 * gamma * ((1 + gamma) * B) + 2 * (1 + gamma) * lam * A) by ring.
    rewrite HB1. ring. }
  assert (HB : B = - lam * A / (1 + gamma)).
  { rewrite <- HB1. field. lra. }
  assert (HC : C = 2 * lam * A / (eta * (1 + gamma))).
  { rewrite <- HC1. field. lra. }
  unfold Cnext in HCn. rewrite HB, HC in HCn.
  assert (Hg : sigma2 / A = 2 * lam * A / (eta * (1 + gamma))
      - (gamma ^ 2 * (2 * lam * A / (eta * (1 + gamma))) + lam ^ 2 * A
         + 2 * gamma * lam * (- lam * A / (1 + gamma)))) by lra.
  assert (Hs : sigma2 = A * A * (lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam))
                        / (eta * (1 + gamma))).
  { replace sigma2 with (A * (sigma2 / A)) by (field; lra).
    rewrite Hg. field. lra. }
  assert (HAA : A * A = norm4_star).
  { unfold norm4_star. rewrite Hs. field. repeat split; nra. }
  assert (HAs : A = A_star).
  { unfold A_star. rewrite <- HAA. rewrite sqrt_square; lra. }
  rewrite HAs in HB, HC. unfold B_star, C_star. auto.
Qed.

(* The moments are those of real vectors: Cauchy-Schwarz holds strictly. *)
Lemma cauchy_schwarz_star : B_star ^ 2 < A_star * C_star.
Proof.
  pose proof A_star_pos as HA.
  assert (Hdiff : A_star * C_star - B_star ^ 2
                  = lam * A_star ^ 2 * (2 * (1 + gamma) - eta * lam) / (eta * (1 + gamma) ^ 2)).
  { unfold B_star, C_star. field. split; lra. }
  assert (0 < lam * A_star ^ 2 * (2 * (1 + gamma) - eta * lam) / (eta * (1 + gamma) ^ 2)).
  { apply Rdiv_lt_0_compat; [|apply Rmult_lt_0_compat; [lra|apply pow_lt; lra]].
    apply Rmult_lt_0_compat; [apply Rmult_lt_0_compat; [lra|apply pow_lt; lra]|lra]. }
  lra.
Qed.

Theorem cos_delta_star : cos_delta A_star B_star C_star = 1 - eta * lam / (1 + gamma).
Proof.
  pose proof A_star_pos as HA.
  assert (HAn : Anext eta lam gamma A_star B_star C_star (sigma2 / A_star) = A_star).
  { pose proof fixed_point as H. unfold mmap in H. injection H as H1 _ _. exact H1. }
  unfold cos_delta. rewrite HAn, sqrt_sqrt by lra.
  unfold Wcross, B_star. field. split; lra.
Qed.

Theorem equilibrium_steady_state :
  0 < A_star /\ A_star ^ 2 = norm4_star
  /\ mmap A_star B_star C_star = (A_star, B_star, C_star)
  /\ (forall A B C, 0 < A -> mmap A B C = (A, B, C) -> A = A_star /\ B = B_star /\ C = C_star)
  /\ B_star ^ 2 < A_star * C_star
  /\ cos_delta A_star B_star C_star = 1 - eta * lam / (1 + gamma).
Proof.
  split; [exact A_star_pos|]. split; [rewrite <- A_star_sq; ring|].
  split; [exact fixed_point|]. split; [exact fixed_point_unique|].
  split; [exact cauchy_schwarz_star|exact cos_delta_star].
Qed.

(* The Jacobian of (A, B, C) |-> mmap A B C; [dCA] = d C' / d A. *)
Definition dCA (A : R) : R := lam ^ 2 - sigma2 / A ^ 2.
Definition J11 A := 1 - 2 * eta * lam + eta ^ 2 * dCA A.
Definition J12 := - 2 * eta * gamma + eta ^ 2 * (2 * gamma * lam).
Definition J13 := eta ^ 2 * gamma ^ 2.
Definition J21 A := lam - eta * dCA A.
Definition J22 := gamma - eta * (2 * gamma * lam).
Definition J23 := - eta * gamma ^ 2.
Definition J31 A := dCA A.
Definition J32 := 2 * gamma * lam.
Definition J33 := gamma ^ 2.

(* [is_derive] of a map that is p a + q / a + r in A, or p x + r in B or C. *)
Local Ltac in_A p q r :=
  match goal with |- is_derive ?g ?x ?d =>
    assert (E : forall t : R, p * t + q * / t + r = g t)
      by (intro t; cbv beta; unfold Anext, Bnext, Cnext, Rdiv; ring);
    apply (is_derive_ext _ _ x d E);
    replace d with (p - q / x ^ 2) by (unfold J11, J21, J31, dCA; field; assumption);
    apply deriv_affine_inv; assumption end.
Local Ltac in_BC p r :=
  match goal with |- is_derive ?g ?x ?d =>
    assert (E : forall t : R, p * t + r = g t)
      by (intro t; cbv beta; unfold Anext, Bnext, Cnext, Rdiv; ring);
    apply (is_derive_ext _ _ x d E);
    unfold J12, J13, J22, J23, J32, J33; apply deriv_affine end.

Lemma jacobian_entries (A B C : R) : A <> 0 ->
  is_derive (fun a => Anext eta lam gamma a B C (sigma2 / a)) A (J11 A)
  /\ is_derive (fun b => Anext eta lam gamma A b C (sigma2 / A)) B J12
  /\ is_derive (fun c => Anext eta lam gamma A B c (sigma2 / A)) C J13
  /\ is_derive (fun a => Bnext eta lam gamma a B C (sigma2 / a)) A (J21 A)
  /\ is_derive (fun b => Bnext eta lam gamma A b C (sigma2 / A)) B J22
  /\ is_derive (fun c => Bnext eta lam gamma A B c (sigma2 / A)) C J23
  /\ is_derive (fun a => Cnext eta lam gamma a B C (sigma2 / a)) A (J31 A)
  /\ is_derive (fun b => Cnext eta lam gamma A b C (sigma2 / A)) B J32
  /\ is_derive (fun c => Cnext eta lam gamma A B c (sigma2 / A)) C J33.
Proof.
  intro HA.
  split. in_A (1 - 2 * eta * lam + eta ^ 2 * lam ^ 2) (eta ^ 2 * sigma2)
              (- 2 * eta * gamma * B + eta ^ 2 * (gamma ^ 2 * C + 2 * gamma * lam * B)).
  split. in_BC (- 2 * eta * gamma + eta ^ 2 * (2 * gamma * lam))
               (A - 2 * eta * lam * A + eta ^ 2 * (gamma ^ 2 * C + lam ^ 2 * A + sigma2 / A)).
  split. in_BC (eta ^ 2 * gamma ^ 2)
               (A - 2 * eta * (gamma * B + lam * A)
                + eta ^ 2 * (lam ^ 2 * A + 2 * gamma * lam * B + sigma2 / A)).
  split. in_A (lam - eta * lam ^ 2) (- eta * sigma2)
              (gamma * B - eta * (gamma ^ 2 * C + 2 * gamma * lam * B)).
  split. in_BC (gamma - eta * (2 * gamma * lam))
               (lam * A - eta * (gamma ^ 2 * C + lam ^ 2 * A + sigma2 / A)).
  split. in_BC (- eta * gamma ^ 2)
               (gamma * B + lam * A - eta * (lam ^ 2 * A + 2 * gamma * lam * B + sigma2 / A)).
  split. in_A (lam ^ 2) sigma2 (gamma ^ 2 * C + 2 * gamma * lam * B).
  split. in_BC (2 * gamma * lam) (gamma ^ 2 * C + lam ^ 2 * A + sigma2 / A).
  in_BC (gamma ^ 2) (lam ^ 2 * A + 2 * gamma * lam * B + sigma2 / A).
Qed.

Definition det3 (a b c d e f g h i : R) : R :=
  a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g).

Definition b_quad : R := (1 + gamma) - 4 * eta * lam + 2 * eta ^ 2 * lam ^ 2 / (1 + gamma).

Theorem jacobian_charpoly (x : R) :
  det3 (J11 A_star - x) J12 J13
       (J21 A_star) (J22 - x) J23
       (J31 A_star) J32 (J33 - x)
  = - (x - gamma ^ 2) * (x ^ 2 - b_quad * x + gamma).
Proof.
  pose proof A_star_pos as HA.
  assert (Hd : sigma2 / A_star ^ 2
               = lam * (1 - gamma) * (2 * (1 + gamma) - eta * lam) / (eta * (1 + gamma))).
  { rewrite sigma2_star. field. repeat split; lra. }
  unfold det3, J11, J12, J13, J21, J22, J23, J31, J32, J33, dCA, b_quad. rewrite Hd.
  field. split; lra.
Qed.

End SteadyState.

(* The closed moment map is the one the vector recurrence gives: with
   E<g,g> = sigma^2 / A, one step of SGD maps the moments (A, B, C) to
   [mmap eta lam gamma sigma2 A B C]. *)
Theorem moment_map_derived (I : Type) (ip : vec I -> vec I -> R)
    (ip_sym : forall x y, ip x y = ip y x)
    (ip_lin : forall a b x y z, ip (fun i => a * x i + b * y i) z = a * ip x z + b * ip y z)
    (Omega : Type) (Ex : (Omega -> R) -> R)
    (Ex_lin : forall a b f h, Ex (fun o => a * f o + b * h o) = a * Ex f + b * Ex h)
    (eta lam gamma sigma2 : R) (Gs : Omega -> vec I -> vec I) (w v : Omega -> vec I)
    (grad_orth : forall o x, ip (Gs o x) x = 0)
    (noise_mean : Ex (fun o => ip (Gs o (w o)) (v o)) = 0) :
  let A := Ex (fun o => ip (w o) (w o)) in
  let B := Ex (fun o => ip (w o) (v o)) in
  let C := Ex (fun o => ip (v o) (v o)) in
  let s1 := fun o => sgd_step (Gs o) eta lam gamma (w o, v o) in
  Ex (fun o => ip (Gs o (w o)) (Gs o (w o))) = sigma2 / A ->
  (Ex (fun o => ip (fst (s1 o)) (fst (s1 o))), Ex (fun o => ip (fst (s1 o)) (snd (s1 o))),
   Ex (fun o => ip (snd (s1 o)) (snd (s1 o)))) = mmap eta lam gamma sigma2 A B C.
Proof.
  intros A B C s1 Hclose. unfold s1. unfold A, B, C in *.
  destruct (moment_step I ip ip_sym ip_lin Omega Ex Ex_lin eta lam gamma Gs w v
              grad_orth noise_mean) as (H1 & H2 & H3 & _).
  rewrite H1, H2, H3, Hclose. reflexivity.
Qed.
