import { fileURLToPath } from 'node:url';
import { loadOnnx, saveOnnx, quantizeGraph, evaluateModel, mnistTest } from 'edgeopt';

// A PyTorch export shipped with the examples: Flatten [N,1,28,28] -> Linear(784,64) -> ReLU -> Linear(64,10).
const file = fileURLToPath(new URL('./models/mnist-mlp-1x28x28.onnx', import.meta.url));
const g = loadOnnx(file); // loadModel(file) and loadModel(bytes) detect ONNX too
const int8 = quantizeGraph(g);
const digits = mnistTest();
const images = { ...digits, shape: [digits.shape[0], 1, 28, 28] };
console.log(`fp32 ${evaluateModel(g, images).accuracy}, int8 ${evaluateModel(int8, images).accuracy}`);
const bytes = saveOnnx(int8, 'model-int8.onnx'); // or { int8: 'qdq' }; onnxruntime runs both
console.log(`wrote model-int8.onnx (${bytes} bytes)`);
