// Draws a simple 2D face from one frame of anima face parameters (docs/protocol.md, "face").
// Mouth values and blink are 0..1; head angles are small, in degrees.
"use strict";

function drawFace(ctx, p) {
  const w = ctx.canvas.width, h = ctx.canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.save();
  // Head pose: yaw and pitch shift the face, roll rotates it around the neck.
  ctx.translate(w / 2 + p.head_yaw * 4, h / 2 + p.head_pitch * 4);
  ctx.rotate((p.head_roll * Math.PI) / 180);
  const r = w * 0.36;
  ctx.fillStyle = "#f2c9a5";
  ctx.beginPath();
  ctx.ellipse(0, 0, r * 0.86, r, 0, 0, 2 * Math.PI);
  ctx.fill();
  // Eyes: the lid closes from the top as blink goes to 1.
  const open = 1 - Math.min(1, Math.max(0, p.blink));
  for (const side of [-1, 1]) {
    const ex = side * r * 0.36, ey = -r * 0.2;
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.ellipse(ex, ey, r * 0.16, r * 0.1 * Math.max(open, 0.08), 0, 0, 2 * Math.PI);
    ctx.fill();
    if (open > 0.25) {
      ctx.fillStyle = "#3b2a1e";
      ctx.beginPath();
      ctx.arc(ex, ey, r * 0.06 * open, 0, 2 * Math.PI);
      ctx.fill();
    }
    // Brows lift a little when happy or surprised.
    const lift = p.emotion === "surprised" ? 0.08 : p.emotion === "happy" ? 0.03 : 0;
    ctx.strokeStyle = "#5a3b28";
    ctx.lineWidth = r * 0.04;
    ctx.beginPath();
    ctx.moveTo(ex - r * 0.16, ey - r * (0.2 + lift));
    ctx.lineTo(ex + r * 0.16, ey - r * (0.22 + lift));
    ctx.stroke();
  }
  // Mouth: width from lip_width (wider) and lip_round (narrower); height from jaw_open,
  // pressed shut by lip_closure.
  const width = r * (0.42 + 0.22 * p.lip_width - 0.2 * p.lip_round);
  const height = r * 0.32 * p.jaw_open * (1 - 0.9 * p.lip_closure);
  const smile = p.emotion === "happy" ? r * 0.06 : p.emotion === "sad" ? -r * 0.05 : 0;
  const my = r * 0.45;
  ctx.fillStyle = "#7a2630";
  ctx.strokeStyle = "#b0434f";
  ctx.lineWidth = r * 0.035;
  ctx.beginPath();
  ctx.moveTo(-width / 2, my - smile);
  ctx.quadraticCurveTo(0, my - height * 0.5 + smile * 0.3, width / 2, my - smile);
  ctx.quadraticCurveTo(0, my + height + smile, -width / 2, my - smile);
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
  ctx.restore();
}
