/**
 * Learning-rate schedules over a training run, as torch.optim.lr_scheduler's CosineAnnealingLR
 * (stepped per batch here) and StepLR (stepped per epoch). The trainer sets the optimizer's lr
 * from them before every step.
 */
import { EdgeOptError } from '../errors';

export type LrSchedule =
  /** lr_t = min + (lr - min)·(1 + cos(π·t/T))/2 over the run's T steps. */
  | { kind: 'cosine'; minLr?: number }
  /** lr·gamma^floor((epoch - 1) / every). */
  | { kind: 'step'; every: number; gamma?: number };

export function checkSchedule(s: LrSchedule): void {
  if (s.kind === 'cosine') {
    if (s.minLr !== undefined && !(s.minLr >= 0))
      throw new EdgeOptError('E_ARGUMENT', `train: schedule.minLr must be >= 0, got ${s.minLr}`);
  } else if (s.kind === 'step') {
    if (!(Number.isInteger(s.every) && s.every > 0))
      throw new EdgeOptError('E_ARGUMENT', `train: schedule.every must be a positive integer of epochs, got ${s.every}`);
    if (s.gamma !== undefined && !(s.gamma > 0 && s.gamma <= 1))
      throw new EdgeOptError('E_ARGUMENT', `train: schedule.gamma must be in (0, 1], got ${s.gamma}`);
  } else
    throw new EdgeOptError('E_ARGUMENT', `train: schedule.kind must be 'cosine' or 'step', got '${String((s as { kind: unknown }).kind)}'`);
}

/** The learning rate at 0-based `step` of `steps` (in 1-based `epoch`) for base rate `lr`. */
export function scheduledLr(s: LrSchedule, lr: number, step: number, steps: number, epoch: number): number {
  if (s.kind === 'step') return lr * (s.gamma ?? 0.1) ** Math.floor((epoch - 1) / s.every);
  const min = s.minLr ?? 0;
  return min + ((lr - min) * (1 + Math.cos((Math.PI * step) / Math.max(1, steps)))) / 2;
}
