(* negative/WrongAdamL2Map.v -- NEGATIVE CONTROL: this file must be
   REJECTED by coqc.

   It claims (extending Li & Arora, ICLR 2020, to Adam) that AdamW's map
   (AdamW.v at the first step: c_1 = 1 - eta lambda, eta~ = eta / c_1,
   eps~ = eps, c_0 = 1) carries stock Adam with COUPLED L2 decay (x = g + lambda theta through the moments) onto Adam
   without weight decay, on every coordinate.  False (AdamL2.v): at g = 0
   the converted run does not move.  The proof script is the one that
   succeeds for decoupled decay (AdamW); proofs/coq_check.py checks that
   coqc rejects this file inside [wrong_adam_l2_map] and that the marked
   line, once fixed to AdamW's step, compiles.
   Corresponding SymPy module: proofs/adam_l2.py. *)

From Coq Require Import Reals Lra.
From ExpLR Require Import AdamW.
Open Scope R_scope.

(* Coupled L2 (torch.optim.Adam, weight_decay = wd) or decoupled (AdamW). *)
Definition coupled : bool := true. (* FIX: false. *)

(* The stock run's first step on one coordinate (zero buffers, k = 1). *)
Definition stock (lr wd eps b1 b2 th g : R) : R :=
  if coupled
  then thstep lr 0 eps (1 - b1) (1 - b2) th (mstep b1 0 (g + wd * th)) (vstep b2 0 (g + wd * th))
  else thstep lr wd eps (1 - b1) (1 - b2) th (mstep b1 0 g) (vstep b2 0 g).

Theorem wrong_adam_l2_map (lr wd eps b1 b2 th g : R) :
  0 < 1 - lr * wd -> 0 < eps -> b1 < 1 -> b2 < 1 ->
  thstep (lr / (1 - lr * wd)) 0 eps (1 - b1) (1 - b2) th (mstep b1 0 g) (vstep b2 0 g)
  = / (1 - lr * wd) * stock lr wd eps b1 b2 th g.
Proof.
  intros Ha He Hb1 Hb2. unfold stock, coupled, thstep.
  pose proof (sqrt_pos (vstep b2 0 g)) as Hv.
  pose proof (sqrt_lt_R0 (1 - b2) ltac:(lra)) as Hs.
  pose proof (Rmult_lt_0_compat eps (sqrt (1 - b2)) He Hs) as Hes.
  field. repeat split; lra.
Qed.
