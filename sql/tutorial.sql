-- "Autoencoders and MNIST" (the tutorial in ../shared/), in SQL.
-- Run from the repository's root after `make` and `make data`:
--     sqlite3 build/demo.db < sql/tutorial.sql        (what `make demo` does)
-- It writes the pictures into examples/ and leaves the model, its history
-- and the per-class table in the database, for sql/charts.sh to draw.
.load ./libaesql
.bail on
.headers on
.mode box

-- 1. Load the data set: the IDX files become tables.
CREATE VIRTUAL TABLE mnist_train USING idx(
  images='data/mnist/train-images-idx3-ubyte',
  labels='data/mnist/train-labels-idx1-ubyte');
CREATE VIRTUAL TABLE mnist_test USING idx(
  images='data/mnist/t10k-images-idx3-ubyte',
  labels='data/mnist/t10k-labels-idx1-ubyte');
SELECT count(*) AS train_rows, (SELECT count(*) FROM mnist_test) AS test_rows
  FROM mnist_train;

-- 2. A closer look: the first training image, a five.
.mode list
SELECT class FROM mnist_train WHERE rowid = 1;
SELECT ae_ascii(pixels) FROM mnist_train WHERE rowid = 1;
SELECT writefile('examples/first_digit.png', ae_png(pixels, 28, 28, 8)) > 0
  AS wrote_first_digit FROM mnist_train WHERE rowid = 1;
.mode box

-- 3. Train: 784 -> 32 (ReLU) -> 784, MSE, Adam, batch 256, 50 epochs,
--    the last 20% held out for validation. Bytes are scaled by 1/255.
SELECT ae_train('mnist_train', 32, '{"seed": 42, "replace": true}') AS model;

-- 4. plot(history): the curves, as a table (sql/charts.sh draws them).
SELECT epoch, round(loss, 5) AS loss, round(val_loss, 5) AS val_loss,
       round(seconds, 3) AS seconds
  FROM ae_history WHERE model = 'mnist_train_32' AND (epoch % 10 = 0 OR epoch = 1);

-- 5. Which digits are hardest to reconstruct? The tutorial's table.
DROP TABLE IF EXISTS class_errors;
CREATE TABLE class_errors AS
  SELECT class, avg(ae_error('mnist_train_32', pixels)) AS avg_error
    FROM mnist_test GROUP BY class;
SELECT class, round(avg_error, 2) AS avg_error FROM class_errors;

-- 6. The first test digit (a seven) above its reconstruction.
SELECT writefile('examples/reconstruction.png',
         ae_png(CAST(pixels || ae_reconstruct('mnist_train_32', pixels) AS BLOB), 28, 56, 8)) > 0
  AS wrote_reconstruction
  FROM mnist_test WHERE rowid = 1;

-- 7. Anomalies: the test digits the model finds least like what it learnt.
SELECT s.key AS test_row, t.class, round(s.error, 2) AS error
  FROM ae_scores('mnist_train_32', 'mnist_test') AS s
  JOIN mnist_test AS t ON t.rowid = s.key
 ORDER BY s.error DESC LIMIT 5;

-- 8. A gallery of the 32 test digits it reconstructs worst, worst first.
SELECT writefile('examples/anomalies.png', ae_grid(pixels, 8, 28, 28, 2)) > 0 AS wrote_gallery
  FROM (SELECT t.pixels FROM ae_scores('mnist_train_32', 'mnist_test') AS s
          JOIN mnist_test AS t ON t.rowid = s.key
         ORDER BY s.error DESC LIMIT 32);

-- 9. Finding anomalies: MNIST is normal, Fashion-MNIST's test images are
--    not. The ROC curve (sql/charts.sh draws it), its area, and the point
--    the calibrated threshold picks (1% false alarms on held-out digits).
CREATE VIRTUAL TABLE IF NOT EXISTS temp.fashion_test
  USING idx(images='data/fashion/t10k-images-idx3-ubyte.gz');
DROP TABLE IF EXISTS roc;
CREATE TABLE roc AS
  SELECT json_extract(value, '$.fpr') AS fpr, json_extract(value, '$.tpr') AS tpr
    FROM json_each((SELECT ae_roc_curve(error, anomaly) FROM (
      SELECT error, 0 AS anomaly FROM ae_scores('mnist_train_32', 'mnist_test')
      UNION ALL SELECT error, 1 FROM ae_scores('mnist_train_32', 'fashion_test'))));
DROP TABLE IF EXISTS roc_summary;
CREATE TABLE roc_summary AS SELECT
  (SELECT ae_auroc(error, anomaly) FROM (
     SELECT error, 0 AS anomaly FROM ae_scores('mnist_train_32', 'mnist_test')
     UNION ALL SELECT error, 1 FROM ae_scores('mnist_train_32', 'fashion_test'))) AS auroc,
  (SELECT avg(is_anomaly) FROM ae_scores('mnist_train_32', 'mnist_test')) AS fpr_at_threshold,
  (SELECT avg(is_anomaly) FROM ae_scores('mnist_train_32', 'fashion_test')) AS tpr_at_threshold;
SELECT round(auroc, 4) AS auroc, round(fpr_at_threshold, 4) AS false_alarms,
       round(tpr_at_threshold, 4) AS detected FROM roc_summary;
